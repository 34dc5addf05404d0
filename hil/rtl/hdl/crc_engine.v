// Gnomon FPGA integrity blocks: parameterised CRC engine, 8 bits per clock.
//
// The engine computes any Rocksoft-model CRC (WIDTH, POLY, INIT, REFIN, REFOUT, XOROUT).
// With REFIN=0 the register shifts left and takes each byte MSB first; with REFIN=1 it
// is the bit-reversed ("reflected") register, shifting right with the reversed
// polynomial and taking each byte LSB first, so neither form needs bit reversal on the
// data path (REFIN != REFOUT adds one reversal on the output, plain wiring).
//
// One byte per clock: the eight bit steps of the loop below unroll into one XOR
// network per state bit (what a synthesizer makes of it; no multi-cycle logic).
//   clear=1, in_valid=0 : state <= INIT
//   clear=1, in_valid=1 : state <= next(INIT, in_byte)   (first byte of a new message,
//                                                         no bubble between messages)
//   clear=0, in_valid=1 : state <= next(state, in_byte)
// `crc` is the finished checksum (REFOUT and XOROUT applied) of every byte accepted so
// far; it is valid in the clock after the last byte, with no extra latency.
//
// Verilog-2005, synthesizable: no initial blocks, no delays.

`default_nettype none

module gnomon_crc_engine #(
    parameter integer WIDTH = 16,
    parameter [WIDTH-1:0] POLY = 16'h1021,
    parameter [WIDTH-1:0] INIT = 16'hFFFF,
    parameter integer REFIN = 0,
    parameter integer REFOUT = 0,
    parameter [WIDTH-1:0] XOROUT = 16'h0000
) (
    input  wire             clk,
    input  wire             rst,       // synchronous, active high: state <= INIT
    input  wire             clear,     // start a new message (see table above)
    input  wire             in_valid,  // in_byte is a message byte this clock
    input  wire [7:0]       in_byte,
    output wire [WIDTH-1:0] crc,       // finished checksum of the bytes so far
    output wire [WIDTH-1:0] state      // raw register (reflected when REFIN)
);

    // Bit reversal, used at elaboration only (constants) and as wiring.
    function [WIDTH-1:0] reverse_w;
        input [WIDTH-1:0] value;
        integer i;
        begin
            for (i = 0; i < WIDTH; i = i + 1)
                reverse_w[i] = value[WIDTH - 1 - i];
        end
    endfunction

    localparam [WIDTH-1:0] POLY_REG = (REFIN != 0) ? reverse_w(POLY) : POLY;
    localparam [WIDTH-1:0] INIT_REG = (REFIN != 0) ? reverse_w(INIT) : INIT;

    reg  [WIDTH-1:0] state_q;
    reg  [WIDTH-1:0] c;
    reg              feedback;
    integer          i;

    always @(posedge clk) begin
        if (rst) begin
            state_q <= INIT_REG;
        end else if (in_valid) begin
            c = clear ? INIT_REG : state_q;
            for (i = 0; i < 8; i = i + 1) begin
                if (REFIN != 0) begin
                    feedback = c[0] ^ in_byte[i];
                    c = (c >> 1) ^ (feedback ? POLY_REG : {WIDTH{1'b0}});
                end else begin
                    feedback = c[WIDTH - 1] ^ in_byte[7 - i];
                    c = (c << 1) ^ (feedback ? POLY_REG : {WIDTH{1'b0}});
                end
            end
            state_q <= c;
        end else if (clear) begin
            state_q <= INIT_REG;
        end
    end

    // The register already holds the output bit order when REFIN == REFOUT.
    wire [WIDTH-1:0] state_out;
    genvar j;
    generate
        if ((REFIN != 0) == (REFOUT != 0)) begin : g_same
            assign state_out = state_q;
        end else begin : g_reverse
            for (j = 0; j < WIDTH; j = j + 1) begin : g_bit
                assign state_out[j] = state_q[WIDTH - 1 - j];
            end
        end
    endgenerate

    assign state = state_q;
    assign crc   = state_out ^ XOROUT;

endmodule

// CRC-16/CCITT-FALSE: the PUS packet error control and the TC/TM frame FECF.
// check("123456789") = 0x29B1.
module gnomon_crc16_ccitt (
    input  wire        clk,
    input  wire        rst,
    input  wire        clear,
    input  wire        in_valid,
    input  wire [7:0]  in_byte,
    output wire [15:0] crc
);
    wire [15:0] unused_state;
    gnomon_crc_engine #(
        .WIDTH(16), .POLY(16'h1021), .INIT(16'hFFFF),
        .REFIN(0), .REFOUT(0), .XOROUT(16'h0000)
    ) u_engine (
        .clk(clk), .rst(rst), .clear(clear), .in_valid(in_valid), .in_byte(in_byte),
        .crc(crc), .state(unused_state)
    );
endmodule

// CRC-32C (Castagnoli): the checksum of the int8 runtime's weight blocks.
// check("123456789") = 0xE3069283.
module gnomon_crc32c (
    input  wire        clk,
    input  wire        rst,
    input  wire        clear,
    input  wire        in_valid,
    input  wire [7:0]  in_byte,
    output wire [31:0] crc
);
    wire [31:0] unused_state;
    gnomon_crc_engine #(
        .WIDTH(32), .POLY(32'h1EDC6F41), .INIT(32'hFFFFFFFF),
        .REFIN(1), .REFOUT(1), .XOROUT(32'hFFFFFFFF)
    ) u_engine (
        .clk(clk), .rst(rst), .clear(clear), .in_valid(in_valid), .in_byte(in_byte),
        .crc(crc), .state(unused_state)
    );
endmodule

`default_nettype wire
