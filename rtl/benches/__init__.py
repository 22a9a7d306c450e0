"""cocotb testbenches (tb_*.py, never collected by pytest); run through rtl.regress for Icarus and Verilator."""
