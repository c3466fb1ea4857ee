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
