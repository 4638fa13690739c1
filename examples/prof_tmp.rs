fn main() {
    let n: u64 = std::env::args().nth(1).map_or(50_000_000, |s| s.parse().unwrap());
    let mode: u32 = std::env::args().nth(2).map_or(0, |s| s.parse().unwrap());
    for _ in 0..3 {
    let (tx, rx) = rillet::spsc::channel(1024);
    let s = std::time::Instant::now();
    let h = std::thread::spawn(move || { for i in 0..n { if mode == 0 { tx.send(i).unwrap() } else { let mut v = i; loop { match tx.try_send(v) { Ok(()) => break, Err(e) => { v = e.into_inner(); std::hint::spin_loop() } } } } } });
    let mut sum = 0u64;
    for _ in 0..n { if mode == 0 { sum = sum.wrapping_add(rx.recv().unwrap()); } else { loop { if let Ok(v) = rx.try_recv() { sum = sum.wrapping_add(v); break } std::hint::spin_loop() } } }
    h.join().unwrap();
    assert_eq!(sum, n*(n-1)/2);
    eprint!("{:.1} M/s  ", n as f64 / s.elapsed().as_secs_f64() / 1e6);
    let (mut tx, mut rx) = rtrb::RingBuffer::new(1024);
    let s = std::time::Instant::now();
    let h = std::thread::spawn(move || { for i in 0..n { while tx.push(i).is_err() { std::hint::spin_loop() } } });
    let mut sum = 0u64;
    for _ in 0..n { loop { if let Ok(v) = rx.pop() { sum = sum.wrapping_add(v); break } std::hint::spin_loop() } }
    h.join().unwrap();
    assert_eq!(sum, n*(n-1)/2);
    eprintln!("rtrb {:.1} M/s", n as f64 / s.elapsed().as_secs_f64() / 1e6);
    }
}
