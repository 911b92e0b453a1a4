//! `make bench-heap`: memshim's malloc side by side with glibc, mimalloc,
//! jemalloc and five Rust allocator crates, every one through the same C
//! ABI, in one run.
//!
//! Each measurement is one process of `heap-runner` (bench/heap/runner.c):
//! it loads one allocator's shared object with `RTLD_LOCAL` (so nothing
//! else in the process uses it; glibc is the process's own), runs one
//! workload and prints one line. This program starts those processes —
//! allocators interleaved, each workload repeated, medians kept — runs
//! the instruction counts under cachegrind, and writes the tables
//! (stdout and `heap.md`), `heap.csv`, `heap-efficiency.csv` and the plot
//! `heap.svg` into the output directory.
//!
//!     bench-heap [--quick] [--reps N] [--only NAME,..] [--workloads NAME,..]
//!                [--runner PATH] [--lib-dir DIR] [--out DIR]
//!
//! The output directory is bench/results (the committed results), or
//! target/bench-heap/results with --quick.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The allocators, in table order: name, shared object (`{lib}` is the
/// build directory; bare names go through the dynamic loader's search).
const ALLOCATORS: [(&str, &str); 9] = [
    ("memshim", "{lib}/libmemshim.so"),
    ("glibc", "glibc"),
    ("mimalloc", "libmimalloc.so.2"),
    ("jemalloc", "libjemalloc.so.2"),
    ("talc", "{lib}/libbench_talc.so"),
    ("rlsf", "{lib}/libbench_rlsf.so"),
    ("dlmalloc", "{lib}/libbench_dlmalloc.so"),
    ("buddy", "{lib}/libbench_buddy.so"),
    ("lla", "{lib}/libbench_lla.so"),
];

/// A workload of heap-runner (see its comments for what each does).
struct Workload {
    name: &'static str,
    what: &'static str,
    /// Runs in threads; "single-threaded" for the goals means `threads <= 1`.
    threads: u32,
    /// Scale of the smaller of the two cachegrind runs (None: not counted).
    cg_scale: Option<f64>,
}

const fn wl(name: &'static str, what: &'static str, threads: u32, cg: Option<f64>) -> Workload {
    Workload {
        name,
        what,
        threads,
        cg_scale: cg,
    }
}

static WORKLOADS: [Workload; 16] = [
    wl("pairs-16", "malloc(16) + free", 0, Some(0.01)),
    wl("pairs-256", "malloc(256) + free", 0, Some(0.01)),
    wl("pairs-4k", "malloc(4096) + free", 0, Some(0.02)),
    wl(
        "lifo",
        "64 blocks of 16-256 B, freed newest first",
        0,
        Some(0.01),
    ),
    wl(
        "random",
        "small-heavy mix in 8192 slots, random frees, 1/8 calloc",
        0,
        Some(0.02),
    ),
    wl("fifo", "queue of 1024 blocks of 16-512 B", 0, Some(0.02)),
    wl(
        "realloc",
        "16 blocks grown by realloc x1.5 from 16 B to 64 KiB",
        0,
        Some(0.04),
    ),
    wl("large", "32 live blocks of 64 KiB-1 MiB", 0, Some(0.1)),
    wl("align", "256 live blocks aligned 64 B-4 KiB", 0, Some(0.04)),
    wl(
        "fragment",
        "8000 small, every other freed, 2000 larger, all freed",
        0,
        Some(0.04),
    ),
    wl(
        "churn-1m",
        "10^6 live blocks of 16-256 B, random replace",
        0,
        Some(0.04),
    ),
    wl("local-1t", "1 thread, 1024 slots of 16-512 B", 1, None),
    wl("local-2t", "2 threads, each on its own blocks", 2, None),
    wl("local-4t", "4 threads, each on its own blocks", 4, None),
    wl(
        "cross-2t",
        "1 producer/consumer pair: frees in the other thread",
        2,
        None,
    ),
    wl("cross-4t", "2 producer/consumer pairs", 4, None),
];

/// Static TLS that jemalloc (initial-exec TLS) needs when it is loaded with
/// dlopen rather than at start-up; set for every allocator alike.
const TUNABLES: &str = "glibc.rtld.optional_static_tls=16384";

struct Config {
    runner: PathBuf,
    lib_dir: String,
    out: PathBuf,
    reps: usize,
    lat_reps: usize,
    scale: f64,
    cg_factor: f64,
    eff_scale: f64,
    /// heap-runner stops a single-threaded workload after this long.
    limit_s: f64,
    quick: bool,
}

/// The efficiency run fills 256 MiB: its time limit is this many times a
/// workload's.
const EFF_LIMIT: f64 = 4.0;

/// The parsed `key=value` words of one heap-runner line.
type Fields = BTreeMap<String, f64>;

fn parse(line: &str) -> Fields {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

/// Runs a command with its output in files (a full pipe cannot stall it),
/// killed after `timeout`. Ok(stdout) on exit status 0.
fn run(cmd: &mut Command, timeout: Duration, tmp: &Path) -> Result<String, String> {
    let (out_path, err_path) = (tmp.join("stdout"), tmp.join("stderr"));
    let out = File::create(&out_path).map_err(|e| e.to_string())?;
    let err = File::create(&err_path).map_err(|e| e.to_string())?;
    let mut child = cmd
        .env("GLIBC_TUNABLES", TUNABLES)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timeout ({} s)", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        let last = stderr.lines().last().unwrap_or("").trim().to_string();
        Err(format!("failed ({status}): {last}"))
    }
}

/// One heap-runner process: `mode` (time, lat, eff) of `workload`.
fn runner(
    cfg: &Config,
    alloc: &str,
    mode: &str,
    workload: &str,
    scale: f64,
    limit_s: f64,
) -> Result<Fields, String> {
    let mut cmd = Command::new(&cfg.runner);
    cmd.args([
        alloc,
        mode,
        workload,
        &scale.to_string(),
        &limit_s.to_string(),
    ]);
    let timeout = Duration::from_secs_f64(limit_s + 60.0);
    run(&mut cmd, timeout, &cfg.out_tmp()).map(|s| parse(&s))
}

/// Instructions the allocator's run executes, counted by cachegrind.
fn cachegrind(cfg: &Config, alloc: &str, workload: &str, scale: f64) -> Result<(f64, f64), String> {
    let log = cfg.out_tmp().join("cachegrind.log");
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
    ])
    .arg(format!("--log-file={}", log.display()))
    .arg(&cfg.runner)
    .args([alloc, "time", workload, &scale.to_string()]);
    let out = run(&mut cmd, Duration::from_secs(600), &cfg.out_tmp())?;
    let ops = *parse(&out).get("ops").ok_or("no ops in the output")?;
    let text = std::fs::read_to_string(&log).map_err(|e| e.to_string())?;
    let refs = text
        .lines()
        .find_map(|l| {
            l.split_once("I   refs:")
                .or_else(|| l.split_once("I refs:"))
        })
        .map(|(_, n)| n.trim().replace(',', ""))
        .and_then(|n| n.parse::<f64>().ok())
        .ok_or("no instruction count in cachegrind's log")?;
    Ok((ops, refs))
}

impl Config {
    fn out_tmp(&self) -> PathBuf {
        PathBuf::from("target/bench-heap")
    }

    fn too_slow(&self) -> String {
        format!("too slow: not done in {} s", self.limit_s)
    }
}

/// Everything measured for one allocator on one workload.
#[derive(Default)]
struct Cell {
    ns: Vec<f64>,
    rss_kib: Vec<f64>,
    p99: Vec<f64>,
    p9999: Vec<f64>,
    max: Vec<f64>,
    instr: Option<f64>,
    /// Some runs stopped at the time limit.
    partial: bool,
    /// Why a measurement is missing.
    error: Option<String>,
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some(if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    })
}

struct Results {
    allocs: Vec<(&'static str, String)>,
    wls: Vec<&'static Workload>,
    cells: Vec<Vec<Cell>>, // [workload][allocator]
    eff: Vec<Result<Fields, String>>,
    /// Instructions per operation of the harness alone (the "null"
    /// allocator), for the pairs workloads.
    harness: BTreeMap<&'static str, f64>,
}

impl Results {
    fn idx(&self, name: &str) -> Option<usize> {
        self.allocs.iter().position(|(n, _)| *n == name)
    }
}

fn measure(
    cfg: &Config,
    allocs: Vec<(&'static str, String)>,
    workloads: Vec<&'static Workload>,
) -> Results {
    let mut cells: Vec<Vec<Cell>> = workloads
        .iter()
        .map(|_| allocs.iter().map(|_| Cell::default()).collect())
        .collect();
    let total = Instant::now();
    let n = allocs.len();
    // Interleaved: every rep visits every workload, the allocators in an
    // order rotated by one each rep, so drift on the machine spreads evenly.
    for rep in 0..cfg.reps {
        eprintln!(
            "bench-heap: time, run {}/{} ({:.0} s so far)",
            rep + 1,
            cfg.reps,
            total.elapsed().as_secs_f64()
        );
        for (w, wl) in workloads.iter().enumerate() {
            for k in 0..n {
                let a = (k + rep) % n;
                let cell = &mut cells[w][a];
                if cell.error.is_some() || cell.partial {
                    continue; // one run at the time limit is enough
                }
                match runner(cfg, &allocs[a].1, "time", wl.name, cfg.scale, cfg.limit_s) {
                    Ok(f) if f.get("ops") == Some(&0.0) => cell.error = Some(cfg.too_slow()),
                    Ok(f) => {
                        cell.ns.extend(f.get("ns_per_op"));
                        cell.rss_kib.extend(f.get("rss_kib"));
                        cell.partial |= f.get("partial") == Some(&1.0);
                    }
                    Err(e) => cell.error = Some(e),
                }
            }
        }
    }
    for rep in 0..cfg.lat_reps {
        eprintln!(
            "bench-heap: latency, run {}/{} ({:.0} s so far)",
            rep + 1,
            cfg.lat_reps,
            total.elapsed().as_secs_f64()
        );
        for (w, wl) in workloads.iter().enumerate() {
            if wl.threads > 0 {
                continue;
            }
            for k in 0..n {
                let a = (k + rep) % n;
                let cell = &mut cells[w][a];
                if cell.error.is_some() || (cell.partial && !cell.p99.is_empty()) {
                    continue;
                }
                match runner(cfg, &allocs[a].1, "lat", wl.name, cfg.scale, cfg.limit_s) {
                    Ok(f) if f.get("ops") == Some(&0.0) => cell.error = Some(cfg.too_slow()),
                    Ok(f) => {
                        cell.p99.extend(f.get("p99_ns"));
                        cell.p9999.extend(f.get("p9999_ns"));
                        cell.max.extend(f.get("max_ns"));
                    }
                    Err(e) => cell.error = Some(e),
                }
            }
        }
    }
    let have_valgrind = Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut harness = BTreeMap::new();
    if have_valgrind {
        eprintln!(
            "bench-heap: instructions (cachegrind) ({:.0} s so far)",
            total.elapsed().as_secs_f64()
        );
        for (w, wl) in workloads.iter().enumerate() {
            let Some(s) = wl.cg_scale else { continue };
            if cfg.quick && !wl.name.starts_with("pairs") {
                continue; // a quick look counts the pairs only
            }
            let s = s * cfg.cg_factor;
            if wl.name.starts_with("pairs") {
                match (
                    cachegrind(cfg, "null", wl.name, s),
                    cachegrind(cfg, "null", wl.name, 2.0 * s),
                ) {
                    (Ok((o1, i1)), Ok((o2, i2))) if o2 > o1 => {
                        harness.insert(wl.name, (i2 - i1) / (o2 - o1));
                    }
                    _ => eprintln!("bench-heap: cachegrind of the harness alone failed"),
                }
            }
            for (a, (_, spec)) in allocs.iter().enumerate() {
                let cell = &mut cells[w][a];
                if cell.error.is_some() || cell.partial {
                    continue; // too slow to finish under cachegrind
                }
                // The difference of two runs cancels start-up and set-up.
                match (
                    cachegrind(cfg, spec, wl.name, s),
                    cachegrind(cfg, spec, wl.name, 2.0 * s),
                ) {
                    (Ok((o1, i1)), Ok((o2, i2))) if o2 > o1 => {
                        cell.instr = Some((i2 - i1) / (o2 - o1))
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        eprintln!("bench-heap: cachegrind {}: {e}", wl.name)
                    }
                    _ => eprintln!(
                        "bench-heap: cachegrind {}: no more operations at 2N",
                        wl.name
                    ),
                }
            }
        }
    } else {
        eprintln!(
            "bench-heap: valgrind not found: no instruction counts (install Debian's valgrind)"
        );
    }
    eprintln!(
        "bench-heap: heap efficiency ({:.0} s so far)",
        total.elapsed().as_secs_f64()
    );
    let eff = allocs
        .iter()
        .map(|(_, spec)| {
            match runner(
                cfg,
                spec,
                "eff",
                "random",
                cfg.eff_scale,
                EFF_LIMIT * cfg.limit_s,
            ) {
                Ok(f) if f.get("partial") == Some(&1.0) => Err(format!(
                    "too slow: not done in {} s",
                    EFF_LIMIT * cfg.limit_s
                )),
                r => r,
            }
        })
        .collect();
    eprintln!("bench-heap: done in {:.0} s", total.elapsed().as_secs_f64());
    Results {
        allocs,
        wls: workloads,
        cells,
        eff,
        harness,
    }
}

// ---- tables -----------------------------------------------------------------

fn fmt_num(v: f64) -> String {
    if v >= 1e5 {
        format!("{:.3e}", v)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A workload × allocator table of one metric (`pick` gives the value).
/// Which workloads a table shows.
type Rows<'a> = &'a dyn Fn(&Workload) -> bool;

fn table(r: &Results, rows: Rows, title: &str, pick: &dyn Fn(&Cell) -> Option<f64>) -> String {
    let mut s = format!("{title}\n\n| workload |");
    for (name, _) in &r.allocs {
        let _ = write!(s, " {name} |");
    }
    s += "\n|---|";
    s += &"---|".repeat(r.allocs.len());
    s += "\n";
    for (w, wl) in r.wls.iter().enumerate().filter(|(_, wl)| rows(wl)) {
        let _ = write!(s, "| {} |", wl.name);
        for cell in &r.cells[w] {
            let v = match (pick(cell), &cell.error) {
                (Some(v), _) => format!("{}{}", fmt_num(v), if cell.partial { "*" } else { "" }),
                (None, Some(e)) if e.starts_with("timeout") || e.starts_with("too slow") => {
                    "too slow".into()
                }
                (None, Some(_)) => "failed".into(),
                (None, None) => "-".into(),
            };
            let _ = write!(s, " {v} |");
        }
        s += "\n";
    }
    s
}

/// memshim's value over each other allocator's (lower is better for memshim).
fn ratios(r: &Results, rows: Rows, title: &str, pick: &dyn Fn(&Cell) -> Option<f64>) -> String {
    let Some(m) = r.idx("memshim") else {
        return String::new();
    };
    let mut s = format!("{title}\n\n| workload |");
    for (name, _) in r.allocs.iter().filter(|(n, _)| *n != "memshim") {
        let _ = write!(s, " / {name} |");
    }
    s += "\n|---|";
    s += &"---|".repeat(r.allocs.len() - 1);
    s += "\n";
    for (w, wl) in r.wls.iter().enumerate().filter(|(_, wl)| rows(wl)) {
        let _ = write!(s, "| {} |", wl.name);
        let mine = pick(&r.cells[w][m]);
        for (a, _) in r.allocs.iter().enumerate().filter(|(a, _)| *a != m) {
            let v = match (mine, pick(&r.cells[w][a])) {
                (Some(x), Some(y)) if y > 0.0 => format!("{:.2}x", x / y),
                _ => "-".into(),
            };
            let _ = write!(s, " {v} |");
        }
        s += "\n";
    }
    s
}

/// Instructions per malloc+free pair of allocator `a`, the harness's own
/// subtracted.
fn pair_instr(r: &Results, workload: &str, a: usize) -> Option<f64> {
    let w = r.wls.iter().position(|w| w.name == workload)?;
    Some(2.0 * (r.cells[w][a].instr? - r.harness.get(workload)?))
}

fn pairs_table(r: &Results) -> String {
    let mut s = String::from(
        "Instructions per malloc+free pair, the harness subtracted (what the same loop executes with a \
         no-op allocator: ",
    );
    let h: Vec<String> = r
        .harness
        .iter()
        .map(|(w, i)| format!("{w} {:.1}", 2.0 * i))
        .collect();
    s += &h.join(", ");
    s += " per pair)\n\n| block |";
    for (name, _) in &r.allocs {
        let _ = write!(s, " {name} |");
    }
    s += "\n|---|";
    s += &"---|".repeat(r.allocs.len());
    s += "\n";
    for (w, label) in [
        ("pairs-16", "16 B"),
        ("pairs-256", "256 B"),
        ("pairs-4k", "4 KiB"),
    ] {
        let _ = write!(s, "| {label} |");
        for a in 0..r.allocs.len() {
            let v = pair_instr(r, w, a).map_or("-".into(), |v| format!("{v:.0}"));
            let _ = write!(s, " {v} |");
        }
        s += "\n";
    }
    s
}

fn ns(c: &Cell) -> Option<f64> {
    median(&c.ns)
}
fn rss_mib(c: &Cell) -> Option<f64> {
    median(&c.rss_kib).map(|k| k / 1024.0)
}

fn eff_table(r: &Results) -> String {
    let mut s = String::from(
        "Heap efficiency: bytes live when the allocator first refuses, over the address space it was allowed (random mix)\n\n\
         | allocator | live MiB | allowed MiB | efficiency |\n|---|---|---|---|\n",
    );
    for ((name, _), e) in r.allocs.iter().zip(&r.eff) {
        match e {
            Ok(f) => {
                let (live, budget) = (
                    f.get("live").copied().unwrap_or(0.0),
                    f.get("budget").copied().unwrap_or(1.0),
                );
                let _ = writeln!(
                    s,
                    "| {name} | {:.1} | {:.0} | {:.1} % |",
                    live / 1048576.0,
                    budget / 1048576.0,
                    100.0 * live / budget
                );
            }
            Err(e) => {
                let _ = writeln!(s, "| {name} | - | - | {e} |");
            }
        }
    }
    s
}

/// The goals, each with memshim's worst case in this run.
fn goals(r: &Results) -> String {
    let mut s =
        String::from("Goals (memshim, this run)\n\n| goal | measured | met |\n|---|---|---|\n");
    let Some(m) = r.idx("memshim") else {
        return s;
    };
    let row = |name: &str| r.wls.iter().position(|w| w.name == name);
    let mut line = |goal: &str, measured: String, met: Option<bool>| {
        let verdict = match met {
            Some(true) => "yes",
            Some(false) => "no",
            None => "not measured",
        };
        let _ = writeln!(s, "| {goal} | {measured} | {verdict} |");
    };
    let instr = |w: &str, a: usize| pair_instr(r, w, a);
    for w in ["pairs-16", "pairs-256"] {
        let v = instr(w, m);
        line(
            &format!("instructions per {} B malloc+free pair <= 60", &w[6..]),
            v.map_or("-".into(), |v| format!("{v:.0}")),
            v.map(|v| v <= 60.0),
        );
    }
    let g = r.idx("glibc");
    let (v, gv) = (instr("pairs-4k", m), g.and_then(|g| instr("pairs-4k", g)));
    line(
        "instructions per 4 KiB pair below glibc's",
        match (v, gv) {
            (Some(v), Some(gv)) => format!("{v:.0} vs {gv:.0}"),
            _ => "-".into(),
        },
        v.zip(gv).map(|(v, gv)| v < gv),
    );
    // Worst ratio of memshim's ns/op over `other`'s among the rows `pred` picks.
    // memshim's ratio over `other`'s on the rows `pred` picks, worst first.
    let ratios = |other: Option<usize>,
                  pred: &dyn Fn(&Workload) -> bool,
                  pick: &dyn Fn(&Cell) -> Option<f64>| {
        let o = other?;
        let mut v: Vec<(f64, &str)> = r
            .wls
            .iter()
            .enumerate()
            .filter(|(_, wl)| pred(wl))
            .filter_map(|(w, wl)| Some((pick(&r.cells[w][m])? / pick(&r.cells[w][o])?, wl.name)))
            .collect();
        v.sort_by(|a, b| b.0.total_cmp(&a.0));
        (!v.is_empty()).then_some(v)
    };
    // Every row over the limit, or the worst one when none is.
    let show = |x: Option<Vec<(f64, &str)>>, limit: f64| {
        let Some(v) = x else {
            return ("-".to_string(), None);
        };
        let over: Vec<String> = v
            .iter()
            .filter(|(x, _)| *x > limit)
            .map(|(x, w)| format!("{w} {x:.2}x"))
            .collect();
        if over.is_empty() {
            (format!("worst {:.2}x ({})", v[0].0, v[0].1), Some(true))
        } else {
            (
                format!("over on {} of {}: {}", over.len(), v.len(), over.join(", ")),
                Some(false),
            )
        }
    };
    let (t, ok) = show(ratios(g, &|w| w.threads <= 1, &ns), 1.0);
    line("time <= 1.0x glibc, every single-threaded workload", t, ok);
    for peer in ["talc", "rlsf"] {
        let (t, ok) = show(ratios(r.idx(peer), &|_| true, &ns), 1.0);
        line(&format!("time <= 1.0x {peer}, every workload"), t, ok);
    }
    let (t, ok) = show(ratios(g, &|w| w.threads >= 2, &ns), 1.0);
    line(
        "2- and 4-thread throughput >= glibc's (time per op <= 1.0x)",
        t,
        ok,
    );
    let p = row("churn-1m").and_then(|w| median(&r.cells[w][m].p9999));
    line(
        "p99.99 latency < 1 us with 10^6 live blocks",
        p.map_or("-".into(), |p| format!("{p:.0} ns")),
        p.map(|p| p < 1000.0),
    );
    let (t, ok) = show(ratios(g, &|_| true, &rss_mib), 1.2);
    line("peak RSS <= 1.2x glibc's, every workload", t, ok);
    let e = r.eff[m]
        .as_ref()
        .ok()
        .and_then(|f| Some(f.get("live")? / f.get("budget")?));
    line(
        "heap efficiency >= 90 % (random mix)",
        e.map_or("-".into(), |e| format!("{:.1} %", 100.0 * e)),
        e.map(|e| e >= 0.9),
    );
    s
}

fn report(r: &Results, cfg: &Config, machine: &str) -> String {
    let mut s = format!(
        "# bench-heap results\n\n{machine}\n\nCommand: `make bench-heap`{}. Times are medians of {} interleaved runs \
         (latencies of {}), each run a process of its own; `*` marks runs stopped after {} s \
         (the time per operation is of what was done by then). Instructions are counted by cachegrind \
         (the difference of two runs, N and 2N operations), per operation; a pair is two.\n\n",
        if cfg.quick { " (BENCH_HEAP_ARGS=--quick)" } else { "" },
        cfg.reps,
        cfg.lat_reps,
        cfg.limit_s
    );
    s += "Workloads:\n\n";
    for wl in &r.wls {
        let _ = writeln!(s, "- `{}`: {}", wl.name, wl.what);
    }
    s += "\n";
    let (all, one): (Rows, Rows) = (&|_| true, &|w| w.threads == 0);
    let sections: Vec<String> = vec![
        table(
            r,
            all,
            "ns per operation (each malloc, free or realloc is one; single-threaded: the process's CPU time; \
             threads: wall time over all threads' operations)",
            &ns,
        ),
        ratios(r, all, "Time ratios, memshim / other (below 1: memshim faster)", &ns),
        pairs_table(r),
        table(r, one, "Instructions per operation, harness included (cachegrind)", &|c| c.instr),
        ratios(r, one, "Instruction ratios, memshim / other", &|c| c.instr),
        table(r, one, "Latency p99, ns (one call timed alone; includes the timer, about 15 ns)", &|c| median(&c.p99)),
        table(r, one, "Latency p99.99, ns", &|c| median(&c.p9999)),
        table(r, one, "Latency max, ns (median of the runs' maxima)", &|c| median(&c.max)),
        table(r, all, "Peak RSS, MiB (VmHWM of the run's process)", &rss_mib),
        ratios(r, all, "Peak RSS ratios, memshim / other", &rss_mib),
        eff_table(r),
        goals(r),
    ];
    s + &sections.join("\n")
}

fn csv(r: &Results) -> String {
    let mut s = String::from(
        "workload,allocator,ns_per_op,p99_ns,p9999_ns,max_ns,instructions_per_op,peak_rss_kib,runs,note\n",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.2}"));
    for (w, wl) in r.wls.iter().enumerate() {
        for (a, (name, _)) in r.allocs.iter().enumerate() {
            let c = &r.cells[w][a];
            let note = match (&c.error, c.partial) {
                (Some(e), _) => e.replace(',', ";"),
                (None, true) => "stopped at the time limit".into(),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "{},{name},{},{},{},{},{},{},{},{note}",
                wl.name,
                opt(median(&c.ns)),
                opt(median(&c.p99)),
                opt(median(&c.p9999)),
                opt(median(&c.max)),
                opt(c.instr),
                opt(median(&c.rss_kib)),
                c.ns.len()
            );
        }
    }
    s
}

fn eff_csv(r: &Results) -> String {
    let mut s = String::from("allocator,live_bytes,allowed_bytes,efficiency,note\n");
    for ((name, _), e) in r.allocs.iter().zip(&r.eff) {
        let _ = match e {
            Ok(f) => {
                let (l, b) = (
                    f.get("live").copied().unwrap_or(0.0),
                    f.get("budget").copied().unwrap_or(1.0),
                );
                writeln!(s, "{name},{l:.0},{b:.0},{:.4},", l / b)
            }
            Err(e) => writeln!(s, "{name},,,,{}", e.replace(',', ";")),
        };
    }
    s
}

// ---- the plot ---------------------------------------------------------------

const COLORS: [&str; 9] = [
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22",
];

/// ns per operation, one group of bars per workload, log scale.
fn svg(r: &Results) -> String {
    let n = r.allocs.len() as f64;
    let (ml, mt, pw, bar, gap) = (90.0, 50.0, 640.0, 7.0, 10.0);
    let group = n * bar + gap;
    let ph = group * r.wls.len() as f64;
    let (w, h) = (ml + pw + 150.0, mt + ph + 40.0);
    let (lo, hi) = (0.0f64, 5.0f64); // 1 ns .. 100 µs
    let x = |v: f64| ml + (v.max(1.0).log10() - lo) / (hi - lo) * pw;
    let mut s = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='11'>\n\
         <rect width='100%' height='100%' fill='white'/>\n\
         <text x='{}' y='20' font-size='14' text-anchor='middle'>bench-heap: ns per operation, median (log scale; shorter is faster)</text>\n",
        ml + pw / 2.0
    );
    for e in 0..=5 {
        let xx = x(10f64.powi(e));
        let label = ["1", "10", "100", "1 µs", "10 µs", "100 µs"][e as usize];
        let _ = writeln!(
            s,
            "<line x1='{xx}' y1='{mt}' x2='{xx}' y2='{}' stroke='#ddd'/><text x='{xx}' y='{}' text-anchor='middle'>{label}</text>",
            mt + ph,
            mt + ph + 14.0
        );
    }
    for (wi, wl) in r.wls.iter().enumerate() {
        let gy = mt + wi as f64 * group;
        let _ = writeln!(
            s,
            "<text x='{}' y='{}' text-anchor='end'>{}</text>",
            ml - 6.0,
            gy + n * bar / 2.0 + 4.0,
            wl.name
        );
        for (a, cell) in r.cells[wi].iter().enumerate() {
            if let Some(v) = median(&cell.ns) {
                let _ = writeln!(
                    s,
                    "<rect x='{ml}' y='{:.1}' width='{:.1}' height='{}' fill='{}'/>",
                    gy + a as f64 * bar,
                    x(v) - ml,
                    bar - 1.0,
                    COLORS[a % COLORS.len()]
                );
            }
        }
    }
    for (a, (name, _)) in r.allocs.iter().enumerate() {
        let ly = mt + 14.0 * a as f64;
        let _ = writeln!(
            s,
            "<rect x='{}' y='{}' width='12' height='9' fill='{}'/><text x='{}' y='{}'>{name}</text>",
            ml + pw + 20.0,
            ly,
            COLORS[a % COLORS.len()],
            ml + pw + 36.0,
            ly + 9.0
        );
    }
    s + "</svg>\n"
}

// ---- main ---------------------------------------------------------------------

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let glibc = Command::new("ldd")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().last().unwrap_or("").to_string())
        })
        .unwrap_or_default();
    format!("Machine: {model}, {cpus} CPUs (nproc), glibc {glibc}.")
}

fn usage() -> ! {
    eprintln!(
        "usage: bench-heap [--quick] [--reps N] [--only NAME,..] [--workloads NAME,..] \
         [--runner PATH] [--lib-dir DIR] [--out DIR]"
    );
    std::process::exit(2);
}

fn main() {
    let mut cfg = Config {
        runner: "target/bench-heap/heap-runner".into(),
        lib_dir: "target/release".into(),
        out: "bench/results".into(),
        reps: 5,
        lat_reps: 3,
        scale: 1.0,
        cg_factor: 1.0,
        eff_scale: 1.0,
        limit_s: 2.0,
        quick: false,
    };
    let (mut only, mut only_wl): (Option<String>, Option<String>) = (None, None);
    let (mut reps, mut out) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--quick" => cfg.quick = true,
            "--reps" => reps = Some(val().parse().unwrap_or_else(|_| usage())),
            "--only" => only = Some(val()),
            "--workloads" => only_wl = Some(val()),
            "--runner" => cfg.runner = val().into(),
            "--lib-dir" => cfg.lib_dir = val(),
            "--out" => out = Some(val()),
            _ => usage(),
        }
    }
    // A quick look never replaces the committed results.
    cfg.out = match (out, cfg.quick) {
        (Some(o), _) => o.into(),
        (None, true) => cfg.out_tmp().join("results"),
        (None, false) => cfg.out,
    };
    if cfg.quick {
        (
            cfg.reps,
            cfg.lat_reps,
            cfg.scale,
            cfg.cg_factor,
            cfg.eff_scale,
            cfg.limit_s,
        ) = (1, 1, 0.1, 0.5, 0.25, 1.0);
    }
    if let Some(r) = reps {
        (cfg.reps, cfg.lat_reps) = (r, r);
    }
    let picked = |list: &Option<String>, name: &str| {
        list.as_ref()
            .is_none_or(|l| l.split(',').any(|x| x == name))
    };
    let mut allocs = Vec::new();
    for (name, spec) in ALLOCATORS {
        if !picked(&only, name) {
            continue;
        }
        let spec = spec.replace("{lib}", &cfg.lib_dir);
        if spec.contains('/') && !Path::new(&spec).exists() {
            eprintln!("bench-heap: {spec} not found, {name} left out (make bench-heap builds it)");
            continue;
        }
        allocs.push((name, spec));
    }
    let wls: Vec<&'static Workload> = WORKLOADS
        .iter()
        .filter(|w| picked(&only_wl, w.name))
        .collect();
    if !cfg.runner.exists() {
        eprintln!(
            "bench-heap: {} not found (make bench-heap builds it)",
            cfg.runner.display()
        );
        std::process::exit(1);
    }
    for dir in [cfg.out.clone(), cfg.out_tmp()] {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("bench-heap: cannot create {}: {e}", dir.display());
            std::process::exit(1);
        }
    }
    let machine = machine();
    let r = measure(&cfg, allocs, wls);
    let md = report(&r, &cfg, &machine);
    println!("{md}");
    for (file, text) in [
        ("heap.md", md),
        ("heap.csv", csv(&r)),
        ("heap-efficiency.csv", eff_csv(&r)),
        ("heap.svg", svg(&r)),
    ] {
        let path = cfg.out.join(file);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("bench-heap: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    eprintln!(
        "bench-heap: wrote {}/heap.{{md,csv,svg}} and heap-efficiency.csv",
        cfg.out.display()
    );
}
