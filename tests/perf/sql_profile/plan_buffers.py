#!/usr/bin/env python3
# plan_buffers.py OUTPUT KIND (enqueue|claim|write): the mean shared buffers hit per scan or
# modify node (partitions folded into _wN) of the plans cycle.sh printed after MEASURE.
import sys,re,collections
kind=sys.argv[2]
txt=open(sys.argv[1]).read(); txt=txt[txt.find('MEASURE'):]
plans=txt.split('QUERY PLAN')[1:]
acc=collections.OrderedDict(); n=0
for p in plans:
    k='enqueue' if 'Insert on events' in p else 'claim' if 'CTE picked' in p else 'write' if 'CTE upd' in p else 'other'
    if k!=kind: continue
    n+=1; label=None
    for l in p.split('\n'):
        m=re.search(r'(Index Scan|Index Only Scan|Seq Scan|Bitmap Heap Scan|Update|Insert|LockRows) (?:using (\S+) )?on (\S+)',l)
        if m: label=m.group(1)+' '+re.sub(r'_w\d{8}','_wN',(m.group(2) or '')+' '+m.group(3)); continue
        if re.match(r'\s*(->|CTE|Trigger|Planning|Execution)',l) and 'Buffers' not in l: label=None
        b=re.search(r'Buffers: shared hit=(\d+)',l)
        if b and label: acc[label]=acc.get(label,0)+int(b.group(1))
for k,v in acc.items(): print(f"{v/n:9.0f}  {k}")
