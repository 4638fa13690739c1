use rillet::*;
use std::time::Instant;
#[test]
fn smoke() {
    let n = 5_000_000u64;
    for cap in [1usize, 2, 1024] {
        let (tx, rx) = spsc::channel(cap);
        let s = Instant::now();
        let h = std::thread::spawn(move || { for i in 0..n { tx.send(i).unwrap() } });
        let mut sum = 0u64; let mut c = 0;
        for v in rx.iter() { assert_eq!(v, c); c += 1; sum += v; }
        h.join().unwrap();
        assert_eq!(c, n); assert_eq!(sum, n*(n-1)/2);
        eprintln!("cap {cap}: {:.1} M/s", n as f64 / s.elapsed().as_secs_f64() / 1e6);
    }
}
