// Gnomon FPGA integrity blocks: single-clock dual-port block RAM.
//
// Port A (CPU side) reads and writes; port B (scrubber side) only reads. Both ports
// register their read data (one clock of latency), the shape every FPGA block RAM
// (Xilinx RAMB18/36, Lattice EBR, Gowin BSRAM) infers without vendor primitives.
// A write on port A returns the old word on a_rdata (read-first).
//
// Verilog-2005, synthesizable: no initial blocks, no delays. Contents start undefined.

`default_nettype none

module gnomon_dpram #(
    parameter integer AW = 10,   // address bits: 2**AW words
    parameter integer DW = 8     // word width in bits
) (
    input  wire          clk,
    input  wire          a_we,
    input  wire [AW-1:0] a_addr,
    input  wire [DW-1:0] a_wdata,
    output reg  [DW-1:0] a_rdata,
    input  wire [AW-1:0] b_addr,
    output reg  [DW-1:0] b_rdata
);

    reg [DW-1:0] mem [0:(1 << AW) - 1];

    always @(posedge clk) begin
        if (a_we)
            mem[a_addr] <= a_wdata;
        a_rdata <= mem[a_addr];
    end

    always @(posedge clk)
        b_rdata <= mem[b_addr];

endmodule

`default_nettype wire
