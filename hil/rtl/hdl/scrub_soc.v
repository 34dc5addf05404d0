// Gnomon FPGA integrity blocks: the scrubber with its two block RAMs, ready to drop
// behind a CPU bus bridge (AXI4-Lite, Wishbone or an SPI slave).
//
//   host arena port  --A--> [ arena RAM 2**ARENA_AW x 8  ] --B--> scrubber
//   host table port  --A--> [ CRC table 2**TABLE_AW x 32 ] --B--> scrubber
//   host register bus ----------------------------------------> scrubber --> irq
//
// The CPU loads the weight arena and the expected CRC-32C of every block through the
// A ports, programs the scrubber's registers, and repairs a block (rewrites its bytes on
// the arena A port) when irq reports it.
//
// Verilog-2005, synthesizable: no initial blocks, no delays.

`default_nettype none

module gnomon_scrub_soc #(
    parameter integer ARENA_AW = 16,
    parameter integer TABLE_AW = 8
) (
    input  wire                clk,
    input  wire                rst,
    // register bus of the scrubber
    input  wire [5:0]          reg_addr,
    input  wire                reg_we,
    input  wire [31:0]         reg_wdata,
    output wire [31:0]         reg_rdata,
    // CPU access to the arena RAM
    input  wire                arena_we,
    input  wire [ARENA_AW-1:0] arena_addr,
    input  wire [7:0]          arena_wdata,
    output wire [7:0]          arena_rdata,
    // CPU access to the CRC table RAM
    input  wire                table_we,
    input  wire [TABLE_AW-1:0] table_addr,
    input  wire [31:0]         table_wdata,
    output wire [31:0]         table_rdata,
    output wire                irq
);

    wire [ARENA_AW-1:0] scrub_arena_addr;
    wire [7:0]          scrub_arena_rdata;
    wire [TABLE_AW-1:0] scrub_table_addr;
    wire [31:0]         scrub_table_rdata;

    gnomon_dpram #(.AW(ARENA_AW), .DW(8)) u_arena (
        .clk(clk),
        .a_we(arena_we), .a_addr(arena_addr), .a_wdata(arena_wdata), .a_rdata(arena_rdata),
        .b_addr(scrub_arena_addr), .b_rdata(scrub_arena_rdata)
    );

    gnomon_dpram #(.AW(TABLE_AW), .DW(32)) u_table (
        .clk(clk),
        .a_we(table_we), .a_addr(table_addr), .a_wdata(table_wdata), .a_rdata(table_rdata),
        .b_addr(scrub_table_addr), .b_rdata(scrub_table_rdata)
    );

    gnomon_scrubber #(.ARENA_AW(ARENA_AW), .TABLE_AW(TABLE_AW)) u_scrubber (
        .clk(clk), .rst(rst),
        .reg_addr(reg_addr), .reg_we(reg_we), .reg_wdata(reg_wdata), .reg_rdata(reg_rdata),
        .arena_addr(scrub_arena_addr), .arena_rdata(scrub_arena_rdata),
        .table_addr(scrub_table_addr), .table_rdata(scrub_table_rdata),
        .irq(irq)
    );

endmodule

`default_nettype wire
