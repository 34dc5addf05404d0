// Gnomon FPGA integrity blocks: BCH(63,56) codeblock decoder of the CLTU (CCSDS 231.0-B).
//
// A codeblock is 8 bytes: 7 information bytes (56 bits), then 7 parity bits sent
// complemented, then one filler bit (0, ignored). Generator g(x) = x^7 + x^6 + x^2 + 1.
// The decoder corrects any single bit error in the 63 coded bits and flags every
// double error as uncorrectable (g(x) = (x + 1)(x^6 + x + 1)), bit for bit like
// fsw.ccsds.bch_decode.
//
// Datapath, one byte per clock:
//   bytes 0..6  -> shift into a 56-bit buffer and through a 7-bit CRC engine
//                  (POLY 0x45, INIT 0: the parity divider of bch_parity)
//   byte 7      -> syndrome S = parity ^ ~byte[7:1]; 56 parallel comparators match S
//                  against the syndrome of a single error at each information bit
//                  (constants computed at elaboration); the result is registered.
// The outputs are valid for one clock (out_valid), exactly one clock after the 8th byte,
// so codeblocks stream back to back at 1 byte per clock.
//   out_error=1                   : uncorrectable (out_info is the raw information)
//   out_error=0, out_corrected=1  : one bit was flipped back (or a parity bit was wrong)
//   out_error=0, out_corrected=0  : clean codeblock
// `clear` (e.g. on a CLTU start sequence) realigns the byte counter to a codeblock start.
//
// Verilog-2005, synthesizable: no initial blocks, no delays.

`default_nettype none

module gnomon_bch_decoder (
    input  wire        clk,
    input  wire        rst,            // synchronous, active high
    input  wire        clear,          // next valid byte is byte 0 of a codeblock
    input  wire        in_valid,
    input  wire [7:0]  in_byte,
    output reg         out_valid,
    output reg  [55:0] out_info,       // byte 0 of the codeblock in bits [55:48]
    output reg         out_corrected,
    output reg         out_error,
    output reg  [6:0]  out_syndrome    // 0 for a clean codeblock (diagnostics)
);

    localparam [6:0] GEN = 7'h45;  // x^6 + x^2 + 1, x^7 implicit

    // Syndrome of a codeblock whose only error is information bit `pos`
    // (pos 0 = most significant bit of byte 0, the first bit on the wire).
    function [6:0] unit_syndrome;
        input integer pos;
        integer i;
        reg [6:0] r;
        reg       feedback;
        begin
            r = 7'd0;
            for (i = 0; i < 56; i = i + 1) begin
                feedback = r[6] ^ (i == pos);
                r = r << 1;
                if (feedback)
                    r = r ^ GEN;
            end
            unit_syndrome = r;
        end
    endfunction

    reg  [2:0]  count;     // index of the next byte within the codeblock
    reg  [55:0] info_buf;

    wire        first   = clear || (count == 3'd0);
    wire        is_info = in_valid && (clear || count != 3'd7);
    wire        is_last = in_valid && !clear && count == 3'd7;

    wire [6:0]  parity;
    wire [6:0]  unused_crc;
    gnomon_crc_engine #(
        .WIDTH(7), .POLY(GEN), .INIT(7'h00), .REFIN(0), .REFOUT(0), .XOROUT(7'h00)
    ) u_parity (
        .clk(clk), .rst(rst), .clear(first), .in_valid(is_info), .in_byte(in_byte),
        .crc(unused_crc), .state(parity)
    );

    wire [6:0]  received = ~in_byte[7:1];
    wire [6:0]  syndrome = parity ^ received;

    // One comparator per information bit: flip[55 - pos] fixes information bit `pos`.
    wire [55:0] flip;
    genvar p;
    generate
        for (p = 0; p < 56; p = p + 1) begin : g_locate
            localparam [6:0] UNIT = unit_syndrome(p);
            assign flip[55 - p] = (syndrome == UNIT);
        end
    endgenerate

    // A single error in a parity bit leaves a syndrome with exactly one bit set.
    wire parity_bit_error = (syndrome != 7'd0) && ((syndrome & (syndrome - 7'd1)) == 7'd0);
    wire located          = (|flip) || parity_bit_error;

    always @(posedge clk) begin
        if (rst) begin
            count         <= 3'd0;
            info_buf      <= 56'd0;
            out_valid     <= 1'b0;
            out_info      <= 56'd0;
            out_corrected <= 1'b0;
            out_error     <= 1'b0;
            out_syndrome  <= 7'd0;
        end else begin
            out_valid <= is_last;
            if (clear && !in_valid)
                count <= 3'd0;
            if (is_info) begin
                info_buf <= {info_buf[47:0], in_byte};
                count    <= first ? 3'd1 : count + 3'd1;
            end
            if (is_last) begin
                count         <= 3'd0;
                out_info      <= info_buf ^ flip;
                out_corrected <= (syndrome != 7'd0) && located;
                out_error     <= (syndrome != 7'd0) && !located;
                out_syndrome  <= syndrome;
            end
        end
    end

endmodule

`default_nettype wire
