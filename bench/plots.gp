# The bench's plots (bench/run.sh): gnuplot -e "dir='DATA'; out='RESULTS'" plots.gp
# reads DATA/{cidr,literal,ports,systemd,tput}.dat written by bench/report.py.
set terminal pngcairo size 900,560 noenhanced
set datafile missing "NaN"
set key top left
set grid

set output out.'/nspkt.png'
set title 'ns per packet against set size (BPF_PROG_TEST_RUN, median)'
set logscale x 10
set xlabel 'set size (prefixes per family, or ports)'
set ylabel 'ns/packet'
set yrange [0:*]
plot dir.'/cidr.dat' using 1:2 with linespoints title 'cgfilter named CIDR set, IPv4 TCP', \
     dir.'/cidr.dat' using 1:3 with linespoints title 'cgfilter named CIDR set, IPv6 TCP (2 ext. headers)', \
     dir.'/literal.dat' using 1:2 with linespoints title 'cgfilter literal CIDR set, IPv4 TCP', \
     dir.'/literal.dat' using 1:3 with linespoints title 'cgfilter literal CIDR set, IPv6 TCP', \
     dir.'/ports.dat' using 1:2 with linespoints title 'cgfilter port set, TCP (in set)', \
     dir.'/ports.dat' using 1:3 with linespoints title 'cgfilter port set, UDP (not in set)', \
     dir.'/systemd.dat' using 1:2 with linespoints title 'systemd IPAddressAllow, IPv4 TCP', \
     dir.'/systemd.dat' using 1:3 with linespoints title 'systemd IPAddressAllow, IPv6 TCP'

set output out.'/throughput.png'
set title 'loopback TCP throughput, ratio to no filter (iperf3, median)'
unset logscale x
unset xlabel
set ylabel 'ratio to no filter'
set yrange [0:1.2]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top right
plot dir.'/tput.dat' using 2:xtic(1) title 'egress', '' using 3 title 'ingress'
