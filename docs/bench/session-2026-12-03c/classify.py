import subprocess, sys, re
setup = re.compile(r'clear_page|__cos|__ieee754_log|xa_rng_normal|xa_rng_fill_normal|xa_rng_u32|loop_fp32|loop_bf16|loop_amx|log@|folio_zero|random64|CPUGeneratorImpl|do_lookup_x|_dl_|memset')
gemm_k = re.compile(r'sgemm_kernel|^micro_kernel|micro_kernel\.constprop')
gemm_p = re.compile(r'sgemm_.*copy|sgemm_beta|pack_rows|pack_cols|pack_a|pack_b|^product|sgemm_tn|sgemm_nn|sgemm_nt')
sched = re.compile(r'__schedule|sched_yield|do_sched_yield|do_syscall_64|finish_task_switch|_raw_spin|futex|entry_SYSCALL')
for f in sys.argv[1:]:
    out = subprocess.run(['perf', 'report', '-i', f, '--no-children', '--sort', 'symbol', '--stdio'], capture_output=True, text=True).stdout
    tot = {'setup': 0, 'gemm kernel': 0, 'gemm packing': 0, 'scheduler/yield': 0, 'other': 0}
    for line in out.splitlines():
        m = re.match(r'\s+([\d.]+)%\s+\[(.)\]\s+(\S+)', line)
        if not m: continue
        p, sym = float(m.group(1)), m.group(3)
        k = 'setup' if setup.search(sym) else 'gemm kernel' if gemm_k.search(sym) else 'gemm packing' if gemm_p.search(sym) else 'scheduler/yield' if sched.search(sym) else 'other'
        tot[k] += p
    step = 100 - tot['setup']
    print(f"{f}: " + ", ".join(f"{k} {v:.1f}%" for k, v in tot.items()) + f" | of the rest (steps): gemm {100*(tot['gemm kernel']+tot['gemm packing'])/step:.0f}%, other {100*tot['other']/step:.0f}%, sched {100*tot['scheduler/yield']/step:.0f}%")
