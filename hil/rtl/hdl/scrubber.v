// Gnomon FPGA integrity blocks: weight-arena memory scrubber.
//
// Walks the arena RAM block by block at one byte per clock, computes each block's
// CRC-32C, compares it with the expected CRC held in the table RAM (word i = block i),
// and on a mismatch pauses with the failing block's index latched and raises `irq`.
// The CPU repairs the block and answers RETRY (check the same block again) or RESUME
// (go on with the next block). Register map (32-bit words, byte offsets):
//
//   0x00 ID            R    0x474E5343 ("GNSC")
//   0x04 CTRL          W    bit0 START  bit1 ABORT  bit2 RESUME  bit3 RETRY
//                           bit4 CLEAR_COUNTERS                  (pulses; reads 0)
//   0x08 CONFIG        RW   bit0 IRQ_ON_MISMATCH  bit1 IRQ_ON_DONE  bit2 CONTINUOUS
//   0x0C STATUS        R    bit0 BUSY  bit1 PAUSED  bit2 DONE  bit3 CFG_ERROR
//                      W1C  DONE, CFG_ERROR (START also clears them)
//   0x10 BLOCK_SIZE    RW   bytes per block (1 .. 2**ARENA_AW)
//   0x14 BLOCK_COUNT   RW   blocks in the arena (1 .. 2**TABLE_AW)
//   0x18 LAST_SIZE     RW   bytes in the last block, 0 = a full block
//   0x1C FAIL_INDEX    R    index of the block that failed its check
//   0x20 FAIL_CRC      R    CRC-32C computed over that block
//   0x24 FAIL_EXPECTED R    CRC-32C the table holds for that block
//   0x28 BLOCKS_CHECKED R   block checks done (wraps at 2**32)
//   0x2C MISMATCHES    R    block checks that failed
//   0x30 PASSES        R    complete passes over the arena
//   0x34 BUSY_CYCLES   R    clocks spent walking (BUSY and not PAUSED)
//   0x38 PARAMS        R    [7:0] ARENA_AW  [15:8] TABLE_AW  [23:16] VERSION
//
// irq (registered) = IRQ_ON_MISMATCH & PAUSED | IRQ_ON_DONE & (DONE | CFG_ERROR).
// Configuration registers are ignored while BUSY. START with a configuration that does
// not fit the RAMs sets CFG_ERROR and does not start.
//
// Timing: a pass over T bytes with no mismatch takes T + 2 clocks from the START write
// to DONE; blocks follow each other with no bubble (the compare of block k overlaps the
// first byte of block k+1). Register reads have one clock of latency.
//
// Verilog-2005, synthesizable: no initial blocks, no delays.

`default_nettype none

module gnomon_scrubber #(
    parameter integer ARENA_AW = 16,  // arena RAM: 2**ARENA_AW bytes
    parameter integer TABLE_AW = 8    // CRC table RAM: 2**TABLE_AW 32-bit words
) (
    input  wire                clk,
    input  wire                rst,          // synchronous, active high
    // register bus: one write or read per clock, word aligned byte offsets
    input  wire [5:0]          reg_addr,
    input  wire                reg_we,
    input  wire [31:0]         reg_wdata,
    output reg  [31:0]         reg_rdata,    // word at reg_addr, one clock later
    // arena RAM read port (registered read data)
    output wire [ARENA_AW-1:0] arena_addr,
    input  wire [7:0]          arena_rdata,
    // CRC table RAM read port (registered read data)
    output wire [TABLE_AW-1:0] table_addr,
    input  wire [31:0]         table_rdata,
    output reg                 irq
);

    localparam [31:0] ID          = 32'h474E5343;
    localparam [7:0]  VERSION     = 8'd1;
    localparam [32:0] ARENA_BYTES = 33'd1 << ARENA_AW;
    localparam [32:0] TABLE_DEPTH = 33'd1 << TABLE_AW;
    localparam [7:0]  P_ARENA_AW  = ARENA_AW;
    localparam [7:0]  P_TABLE_AW  = TABLE_AW;

    localparam [3:0] R_ID = 4'h0, R_CTRL = 4'h1, R_CONFIG = 4'h2, R_STATUS = 4'h3,
                     R_BLOCK_SIZE = 4'h4, R_BLOCK_COUNT = 4'h5, R_LAST_SIZE = 4'h6,
                     R_FAIL_INDEX = 4'h7, R_FAIL_CRC = 4'h8, R_FAIL_EXPECTED = 4'h9,
                     R_BLOCKS_CHECKED = 4'hA, R_MISMATCHES = 4'hB, R_PASSES = 4'hC,
                     R_BUSY_CYCLES = 4'hD, R_PARAMS = 4'hE;

    // ---------------------------------------------------------------- registers
    reg [31:0] block_size, block_count, last_size;
    reg        irq_mismatch_en, irq_done_en, continuous;
    reg        busy, paused, done, cfg_error;
    reg [31:0] fail_index, fail_crc, fail_expected;
    reg [31:0] blocks_checked, mismatches, passes, busy_cycles;

    wire [3:0] word    = reg_addr[5:2];
    wire       wr_ctrl = reg_we && word == R_CTRL;
    wire       cmd_start  = wr_ctrl && reg_wdata[0];
    wire       cmd_abort  = wr_ctrl && reg_wdata[1];
    wire       cmd_resume = wr_ctrl && reg_wdata[2];
    wire       cmd_retry  = wr_ctrl && reg_wdata[3];
    wire       cmd_clear  = wr_ctrl && reg_wdata[4];

    // ------------------------------------------------------ configuration check
    wire [31:0] last_eff = (last_size == 32'd0) ? block_size : last_size;
    wire range_ok = block_size != 32'd0 && {1'b0, block_size} <= ARENA_BYTES &&
                    block_count != 32'd0 && {1'b0, block_count} <= TABLE_DEPTH &&
                    last_size <= block_size;
    wire [TABLE_AW:0]            count_m1 = block_count[TABLE_AW:0] - 1'b1;
    wire [ARENA_AW:0]            size_n   = block_size[ARENA_AW:0];
    wire [TABLE_AW+ARENA_AW+2:0] total    = count_m1 * size_n + last_eff[ARENA_AW:0];
    wire cfg_ok = range_ok && total <= ARENA_BYTES;

    // ------------------------------------------------------------ issue stage
    // Presents one arena address per clock; the RAM answers one clock later.
    reg                issuing;
    reg [ARENA_AW:0]   rd_addr;
    reg [TABLE_AW-1:0] iss_index;
    reg [ARENA_AW:0]   iss_start;       // first address of the block being issued
    reg [ARENA_AW:0]   iss_remaining;   // bytes of this block not yet issued
    reg                iss_first;       // the next issued byte starts a block

    wire [TABLE_AW-1:0] last_index = count_m1[TABLE_AW-1:0];

    assign arena_addr = rd_addr[ARENA_AW-1:0];
    assign table_addr = iss_index;

    // ------------------------------------------------------------- data stage
    reg                d_valid, d_first, d_last;
    reg [TABLE_AW-1:0] d_index;
    reg [ARENA_AW:0]   d_start;

    wire [31:0] crc;
    gnomon_crc32c u_crc (
        .clk(clk), .rst(rst), .clear(d_first), .in_valid(d_valid), .in_byte(arena_rdata),
        .crc(crc)
    );

    // ---------------------------------------------------------- compare stage
    reg                c_valid;
    reg [TABLE_AW-1:0] c_index;
    reg [ARENA_AW:0]   c_start;
    reg [31:0]         c_expected;

    // Written as "match" so that an unknown CRC in simulation (a RAM word never
    // written) takes the mismatch branch below instead of passing silently.
    wire match     = crc == c_expected;
    wire c_is_last = c_valid && c_index == last_index;

    // Where a RESUME or RETRY goes on from.
    reg [TABLE_AW-1:0] p_index;
    reg [ARENA_AW:0]   p_start;

    task begin_block;
        input [TABLE_AW-1:0] index;
        input [ARENA_AW:0]   start;
        begin
            issuing       <= 1'b1;
            rd_addr       <= start;
            iss_index     <= index;
            iss_start     <= start;
            iss_first     <= 1'b1;
            iss_remaining <= (index == last_index) ? last_eff[ARENA_AW:0]
                                                   : block_size[ARENA_AW:0];
        end
    endtask

    task flush;
        begin
            issuing <= 1'b0;
            d_valid <= 1'b0;
            d_first <= 1'b0;
            d_last  <= 1'b0;
            c_valid <= 1'b0;
        end
    endtask

    // End of a pass: either wrap around (CONTINUOUS) or stop with DONE.
    task finish_pass;
        begin
            passes <= passes + 32'd1;
            done   <= 1'b1;
            if (continuous)
                begin_block({TABLE_AW{1'b0}}, {(ARENA_AW + 1){1'b0}});
            else
                busy <= 1'b0;
        end
    endtask

    always @(posedge clk) begin
        if (rst) begin
            block_size      <= 32'd0;
            block_count     <= 32'd0;
            last_size       <= 32'd0;
            irq_mismatch_en <= 1'b0;
            irq_done_en     <= 1'b0;
            continuous      <= 1'b0;
            busy            <= 1'b0;
            paused          <= 1'b0;
            done            <= 1'b0;
            cfg_error       <= 1'b0;
            fail_index      <= 32'd0;
            fail_crc        <= 32'd0;
            fail_expected   <= 32'd0;
            blocks_checked  <= 32'd0;
            mismatches      <= 32'd0;
            passes          <= 32'd0;
            busy_cycles     <= 32'd0;
            rd_addr         <= {(ARENA_AW + 1){1'b0}};
            iss_index       <= {TABLE_AW{1'b0}};
            iss_start       <= {(ARENA_AW + 1){1'b0}};
            iss_remaining   <= {(ARENA_AW + 1){1'b0}};
            iss_first       <= 1'b0;
            d_index         <= {TABLE_AW{1'b0}};
            d_start         <= {(ARENA_AW + 1){1'b0}};
            c_index         <= {TABLE_AW{1'b0}};
            c_start         <= {(ARENA_AW + 1){1'b0}};
            c_expected      <= 32'd0;
            p_index         <= {TABLE_AW{1'b0}};
            p_start         <= {(ARENA_AW + 1){1'b0}};
            irq             <= 1'b0;
            flush;
        end else begin
            // ---- register writes (configuration is frozen while a pass runs)
            if (reg_we && !busy) begin
                case (word)
                    R_BLOCK_SIZE:  block_size  <= reg_wdata;
                    R_BLOCK_COUNT: block_count <= reg_wdata;
                    R_LAST_SIZE:   last_size   <= reg_wdata;
                    default: ;
                endcase
            end
            if (reg_we && word == R_CONFIG) begin
                irq_mismatch_en <= reg_wdata[0];
                irq_done_en     <= reg_wdata[1];
                continuous      <= reg_wdata[2];
            end
            if (reg_we && word == R_STATUS) begin
                if (reg_wdata[2]) done      <= 1'b0;
                if (reg_wdata[3]) cfg_error <= 1'b0;
            end

            if (busy && !paused)
                busy_cycles <= busy_cycles + 32'd1;

            // ---- pipeline: issue -> data -> compare
            d_valid <= issuing;
            d_first <= issuing && iss_first;
            d_last  <= issuing && iss_remaining == {{ARENA_AW{1'b0}}, 1'b1};
            d_index <= iss_index;
            d_start <= iss_start;
            if (issuing) begin
                if (iss_remaining == {{ARENA_AW{1'b0}}, 1'b1}) begin
                    if (iss_index == last_index)
                        issuing <= 1'b0;
                    else
                        begin_block(iss_index + 1'b1, rd_addr + 1'b1);
                end else begin
                    rd_addr       <= rd_addr + 1'b1;
                    iss_remaining <= iss_remaining - 1'b1;
                    iss_first     <= 1'b0;
                end
            end
            c_valid <= d_valid && d_last;
            if (d_valid && d_last) begin
                c_index    <= d_index;
                c_start    <= d_start;
                c_expected <= table_rdata;
            end

            if (c_valid) begin
                blocks_checked <= blocks_checked + 32'd1;
                if (match) begin
                    if (c_is_last)
                        finish_pass;
                end else begin
                    mismatches    <= mismatches + 32'd1;
                    fail_index    <= {{(32 - TABLE_AW){1'b0}}, c_index};
                    fail_crc      <= crc;
                    fail_expected <= c_expected;
                    p_index       <= c_index;
                    p_start       <= c_start;
                    paused        <= 1'b1;
                    flush;
                end
            end

            // ---- commands (ABORT wins over everything; START only when idle)
            if (cmd_clear) begin
                blocks_checked <= 32'd0;
                mismatches     <= 32'd0;
                passes         <= 32'd0;
                busy_cycles    <= 32'd0;
            end
            if (cmd_start && !busy) begin
                done      <= 1'b0;
                cfg_error <= 1'b0;
                if (cfg_ok) begin
                    busy   <= 1'b1;
                    paused <= 1'b0;
                    begin_block({TABLE_AW{1'b0}}, {(ARENA_AW + 1){1'b0}});
                end else begin
                    cfg_error <= 1'b1;
                end
            end
            if (paused && (cmd_retry || cmd_resume)) begin
                paused <= 1'b0;
                if (cmd_retry)
                    begin_block(p_index, p_start);
                else if (p_index == last_index)
                    finish_pass;
                else
                    begin_block(p_index + 1'b1, p_start + block_size[ARENA_AW:0]);
            end
            if (cmd_abort) begin
                busy   <= 1'b0;
                paused <= 1'b0;
                flush;
            end

            irq <= (irq_mismatch_en && paused) || (irq_done_en && (done || cfg_error));
        end
    end

    // ---------------------------------------------------------- register reads
    always @(posedge clk) begin
        case (word)
            R_ID:             reg_rdata <= ID;
            R_CONFIG:         reg_rdata <= {29'd0, continuous, irq_done_en, irq_mismatch_en};
            R_STATUS:         reg_rdata <= {28'd0, cfg_error, done, paused, busy};
            R_BLOCK_SIZE:     reg_rdata <= block_size;
            R_BLOCK_COUNT:    reg_rdata <= block_count;
            R_LAST_SIZE:      reg_rdata <= last_size;
            R_FAIL_INDEX:     reg_rdata <= fail_index;
            R_FAIL_CRC:       reg_rdata <= fail_crc;
            R_FAIL_EXPECTED:  reg_rdata <= fail_expected;
            R_BLOCKS_CHECKED: reg_rdata <= blocks_checked;
            R_MISMATCHES:     reg_rdata <= mismatches;
            R_PASSES:         reg_rdata <= passes;
            R_BUSY_CYCLES:    reg_rdata <= busy_cycles;
            R_PARAMS:         reg_rdata <= {8'd0, VERSION, P_TABLE_AW, P_ARENA_AW};
            default:          reg_rdata <= 32'd0;
        endcase
    end

endmodule

`default_nettype wire
