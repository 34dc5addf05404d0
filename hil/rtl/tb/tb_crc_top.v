// Simulation top for the CRC engine tests (not for synthesis: it holds the stimulus).
//
// A stimulus player streams one entry of `stim` per clock into a CRC-16/CCITT-FALSE
// engine and a CRC-32C engine side by side. Entry bits: [7:0] byte, [8] valid,
// [9] clear (first byte of a message), [10] capture (store both engines' CRC outputs,
// i.e. the checksum of the message that ended on the previous entry, into `res`).
// The cocotb test fills `stim` through VPI, pulses `go` and reads `res` back, so
// messages run back to back at the engines' full rate of one byte per clock.

`default_nettype none

module tb_crc_top #(
    parameter integer STIM_AW = 17,
    parameter integer RES_AW  = 13
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             go,          // rising: play stim[0 .. stim_len-1]
    input  wire [STIM_AW:0] stim_len,
    output reg              done,        // set after the last entry; cleared by go=0
    output reg  [31:0]      cycles,      // clocks from the first to the last entry
    output reg  [RES_AW:0]  res_count
);

    reg [10:0] stim [0:(1 << STIM_AW) - 1];
    reg [47:0] res  [0:(1 << RES_AW) - 1];   // {crc16, crc32c}

    reg             running;
    reg [STIM_AW:0] pos;

    wire [10:0] entry    = running ? stim[pos[STIM_AW-1:0]] : 11'd0;
    wire        capture  = entry[10];
    wire        clear    = entry[9];
    wire        in_valid = entry[8];
    wire [7:0]  in_byte  = entry[7:0];

    wire [15:0] crc16;
    wire [31:0] crc32c;

    gnomon_crc16_ccitt u_crc16 (
        .clk(clk), .rst(rst), .clear(clear), .in_valid(in_valid), .in_byte(in_byte),
        .crc(crc16)
    );
    gnomon_crc32c u_crc32c (
        .clk(clk), .rst(rst), .clear(clear), .in_valid(in_valid), .in_byte(in_byte),
        .crc(crc32c)
    );

    always @(posedge clk) begin
        if (rst) begin
            running   <= 1'b0;
            done      <= 1'b0;
            pos       <= 0;
            cycles    <= 32'd0;
            res_count <= 0;
        end else if (running) begin
            if (capture) begin
                res[res_count[RES_AW-1:0]] <= {crc16, crc32c};
                res_count <= res_count + 1'b1;
            end
            cycles <= cycles + 32'd1;
            pos    <= pos + 1'b1;
            if (pos + 1'b1 == stim_len) begin
                running <= 1'b0;
                done    <= 1'b1;
            end
        end else if (go && !done && stim_len != 0) begin
            running   <= 1'b1;
            pos       <= 0;
            cycles    <= 32'd0;
            res_count <= 0;
        end else if (!go) begin
            done <= 1'b0;
        end
    end

endmodule

`default_nettype wire
