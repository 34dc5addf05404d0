// Simulation top for the BCH decoder tests (not for synthesis: it holds the stimulus).
//
// A stimulus player streams one entry of `stim` per clock into the decoder. Entry bits:
// [7:0] byte, [8] valid, [9] clear (realign to a codeblock start). Every decoder output
// (out_valid) is stored in `res` together with the clock it appeared on, so the test
// checks both the decoded bits and the latency/throughput.

`default_nettype none

module tb_bch_top #(
    parameter integer STIM_AW = 16,
    parameter integer RES_AW  = 13
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             go,
    input  wire [STIM_AW:0] stim_len,
    output reg              done,
    output reg  [31:0]      cycles,
    output reg  [RES_AW:0]  res_count
);

    reg [9:0]  stim [0:(1 << STIM_AW) - 1];
    // {clock[31:0], error, corrected, syndrome[6:0], info[55:0]}
    reg [96:0] res  [0:(1 << RES_AW) - 1];

    reg             running;
    reg [STIM_AW:0] pos;

    wire [9:0] entry = running ? stim[pos[STIM_AW-1:0]] : 10'd0;

    wire        out_valid, out_corrected, out_error;
    wire [55:0] out_info;
    wire [6:0]  out_syndrome;

    gnomon_bch_decoder u_dec (
        .clk(clk), .rst(rst), .clear(entry[9]), .in_valid(entry[8]), .in_byte(entry[7:0]),
        .out_valid(out_valid), .out_info(out_info), .out_corrected(out_corrected),
        .out_error(out_error), .out_syndrome(out_syndrome)
    );

    always @(posedge clk) begin
        if (rst) begin
            running   <= 1'b0;
            done      <= 1'b0;
            pos       <= 0;
            cycles    <= 32'd0;
            res_count <= 0;
        end else begin
            if (out_valid && (running || done)) begin
                res[res_count[RES_AW-1:0]] <= {cycles, out_error, out_corrected, out_syndrome,
                                               out_info};
                res_count <= res_count + 1'b1;
            end
            if (running) begin
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
    end

endmodule

`default_nettype wire
