//! CPU accounting from `/proc`, to tell a CPU-bound phase from an fsync-bound one and to see the load of
//! other processes on a shared machine.

use std::ops::AddAssign;

/// CPU seconds so far: this process (all threads) and the whole machine's busy time (all CPUs).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTimes {
    pub process: f64,
    pub machine_busy: f64,
}

impl CpuTimes {
    /// From `/proc` (clock ticks of 1/100 s); `None` where it cannot be read.
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // After the command name: state is field 3, utime 14 and stime 15.
        let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok());
        let process = (ticks(14)? + ticks(15)?) / 100.0;
        let all = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<f64> = all
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        let total: f64 = cpu.iter().take(8).sum();
        let idle = cpu.get(3)? + cpu.get(4)?;
        Some(Self { process, machine_busy: (total - idle) / 100.0 })
    }

    /// The CPU time used between `earlier` and this reading.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            process: self.process - earlier.process,
            machine_busy: self.machine_busy - earlier.machine_busy,
        }
    }
}

impl AddAssign for CpuTimes {
    fn add_assign(&mut self, other: Self) {
        self.process += other.process;
        self.machine_busy += other.machine_busy;
    }
}
