//! Resident memory for the memory trigger: [`MemoryProbe`] and the Linux
//! [`ProcStatm`] reader.

/// Measures the process's resident memory.
pub trait MemoryProbe: Send + Sync {
    /// Resident bytes now, `None` if it cannot be measured (then the memory
    /// trigger never fires).
    fn resident_bytes(&self) -> Option<u64>;
}

impl<F: Fn() -> Option<u64> + Send + Sync> MemoryProbe for F {
    fn resident_bytes(&self) -> Option<u64> {
        self()
    }
}

/// Reads `/proc/self/statm` (Linux): resident pages × the page size.
/// Elsewhere it measures nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStatm;

impl MemoryProbe for ProcStatm {
    fn resident_bytes(&self) -> Option<u64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages = parse_statm(&statm)?;
        pages.checked_mul(page_size())
    }
}

/// The second field of `statm`: resident pages.
pub(crate) fn parse_statm(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

/// The page size from the auxiliary vector (`AT_PAGESZ`), 4096 if absent:
/// the growth ratio the trigger uses does not depend on it, only the bytes
/// the log shows.
fn page_size() -> u64 {
    const AT_PAGESZ: u64 = 6;
    const WORD: usize = std::mem::size_of::<usize>();
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 4096;
    };
    let word = |chunk: &[u8]| -> u64 {
        let mut bytes = [0u8; WORD];
        bytes.copy_from_slice(chunk);
        usize::from_ne_bytes(bytes) as u64
    };
    auxv.chunks_exact(2 * WORD)
        .map(|pair| (word(&pair[..WORD]), word(&pair[WORD..])))
        .find(|&(key, _)| key == AT_PAGESZ)
        .map_or(4096, |(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_second_field_is_resident_pages() {
        assert_eq!(parse_statm("1000 250 30 5 0 100 0\n"), Some(250));
        assert_eq!(parse_statm("garbage"), None);
        assert_eq!(parse_statm(""), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_resident_memory() {
        let bytes = ProcStatm.resident_bytes().unwrap();
        assert!(bytes > 1024 * 1024, "{bytes}");
        assert!(page_size().is_power_of_two());
    }
}
