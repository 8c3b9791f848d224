# Draws docs/benchmarks-million.png from the figures of scripts/bench-million.sh that
# docs/benchmarks.md records in its section "One million customers".
#
# Usage: gnuplot scripts/bench-million-plot.gp   (from the repository root; needs gnuplot
# with the pngcairo terminal, such as Debian's gnuplot-nox)

# customers, then cost per customer: CPU microseconds of `tact import contacts`, CPU
# microseconds of planning the newsletter, and wall-clock microseconds of delivery per
# approved message.
$figures << EOD
10000    59   14  69
100000   60   12  58
1000000  70   13  52
EOD

set terminal pngcairo size 800,480 font ",10"
set output "docs/benchmarks-million.png"
set title "tact end to end: cost per customer or message (2 vCPUs)"
set logscale x
set logscale y
set yrange [5:200]
set xrange [5000:2000000]
set xtics ("10,000" 10000, "100,000" 100000, "1,000,000" 1000000)
set xlabel "customers"
set ylabel "microseconds"
set key bottom right
set grid
plot $figures using 1:2 with linespoints title "import contacts, CPU per customer (20 rows)", \
     $figures using 1:3 with linespoints title "plan newsletter, CPU per customer", \
     $figures using 1:4 with linespoints title "deliver, wall clock per message"
