#!/bin/bash
# CPU seconds per phase per round from a cpu.sh output.
awk '/^round/{r=$2} /^(enqueue|claim|mkres|write|end) [0-9]/{v[$1]=$2; if($1=="end") printf "round %s: enqueue(8x2500) %.2f s  claim(100x200) %.2f s  write(40x500) %.2f s\n", r, (v["claim"]-v["enqueue"])/100, (v["mkres"]-v["claim"])/100, (v["end"]-v["write"])/100}' "$1"
