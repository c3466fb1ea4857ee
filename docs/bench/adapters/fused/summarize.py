import sys,collections
d=collections.defaultdict(dict)
for l in open(sys.argv[1]):
    p=l.split('\t')
    if len(p)<7: continue
    d[(p[1],p[2],int(p[3]),p[4])][int(p[5])]=int(p[6])
def per(k):
    v=d[k]; a,b=min(v),max(v); return (v[b]-v[a])/(b-a)
print("| model | B | before: base ms | before: Stack ms | before: overhead | after: base ms | after: Stack ms | after: overhead |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for m,B in [('tiny',8),('tiny',32),('small',8),('small',32)]:
    try:
        bi,bs,fi,fs=[per((b,m,B,mo)) for b,mo in [('base','infer'),('base','infer-stack'),('fuse','infer'),('fuse','infer-stack')]]
    except (KeyError,ValueError): continue
    print(f"| {m} | {B} | {bi:.1f} | {bs:.1f} | +{100*(bs/bi-1):.1f}% | {fi:.1f} | {fs:.1f} | {100*(fs/fi-1):+.1f}% |")
