import json,sys,collections
rows=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
best=collections.defaultdict(float)
for r in rows:
    k=(r['bin'],r['model'],r['batch'],r['mode'])
    best[k]=max(best[k],r['tokens_per_s'])
reps=max(r['rep'] for r in rows)
print(f"best of {reps} interleaved runs, tokens/s; overhead = infer step time / infer-stack step time - 1 ... i.e. infer tok/s / infer-stack tok/s - 1")
print("| model | B | base infer | base infer-stack | base overhead | fused infer | fused infer-stack | fused overhead |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for m in ['tiny','small','base']:
    for b in [8,32]:
        if ('base',m,b,'infer') not in best: continue
        bi,bs=best[('base',m,b,'infer')],best[('base',m,b,'infer-stack')]
        fi,fs=best[('fuse',m,b,'infer')],best[('fuse',m,b,'infer-stack')]
        print(f"| {m} | {b} | {bi:.0f} | {bs:.0f} | +{100*(bi/bs-1):.1f}% | {fi:.0f} | {fs:.0f} | +{100*(fi/fs-1):.1f}% |")
# per rep: each binary's overhead from its own infer and infer-stack rows of that rep (the two rows
# run back to back, so a rep's pair sees similar load); the median over the reps
per=collections.defaultdict(list)
for r in rows:
    per[(r['bin'],r['model'],r['batch'],r['rep'])].append(r)
def ovh(bin_,m,b):
    out=[]
    for rep in range(1,reps+1):
        rs={x['mode']:x['tokens_per_s'] for x in per.get((bin_,m,b,rep),[])}
        if 'infer' in rs and 'infer-stack' in rs: out.append(100*(rs['infer']/rs['infer-stack']-1))
    return sorted(out)
print()
print("per-rep overheads (each rep's own pair), sorted; median in bold")
print("| model | B | base: per rep | base median | fused: per rep | fused median |")
print("|---|---:|---|---:|---|---:|")
for m in ['tiny','small','base']:
    for b in [8,32]:
        o,f=ovh('base',m,b),ovh('fuse',m,b)
        if not o or not f: continue
        fmt=lambda v:', '.join(f"{x:+.1f}%" for x in v)
        print(f"| {m} | {b} | {fmt(o)} | **{o[len(o)//2]:+.1f}%** | {fmt(f)} | **{f[len(f)//2]:+.1f}%** |")
