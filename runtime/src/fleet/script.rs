//! The one Lua script every write goes through: check, write, bump the
//! version, publish, atomically. Atomicity is what makes the rollback latch
//! exactly-once: of any number of replicas that see one breach, only the
//! first call finds the latch open.

use std::sync::LazyLock;

/// `KEYS`: the target hash, the version key, the sites set. `ARGV`: mode
/// (`set`, `seed`: only if the hash does not exist, `latch`: only if the
/// site is not rolled back), the site (`*` for the defaults), the channel,
/// the number of field/value pairs, the pairs, then fields to delete.
/// Returns the new version, or 0 when the mode's check wrote nothing.
const SOURCE: &str = r"
local mode = ARGV[1]
if mode == 'seed' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if mode == 'latch' and redis.call('HGET', KEYS[1], 'rolled_back') == 'true' then return 0 end
local version = redis.call('INCR', KEYS[2])
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
for j = i, #ARGV do redis.call('HDEL', KEYS[1], ARGV[j]) end
if ARGV[2] ~= '*' then
  redis.call('HSET', KEYS[1], 'version', version)
  redis.call('SADD', KEYS[3], ARGV[2])
end
redis.call('PUBLISH', ARGV[3], version .. ' ' .. ARGV[2])
return version
";

/// The script, hashed once (`EVALSHA`, falling back to `EVAL` the first time).
pub(crate) static WRITE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SOURCE));

/// What a write checks before it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Always write.
    Set,
    /// Write only if the hash does not exist yet (the environment seeds an empty state).
    Seed,
    /// Write only if the site is not rolled back (the latch).
    Latch,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Set => "set",
            Mode::Seed => "seed",
            Mode::Latch => "latch",
        }
    }
}

/// One write: the target and what to set and delete.
#[derive(Debug)]
pub(crate) struct Write<'a> {
    pub(crate) mode: Mode,
    /// The site, or `None` for the defaults.
    pub(crate) site: Option<&'a str>,
    pub(crate) set: Vec<(&'static str, String)>,
    pub(crate) delete: Vec<&'static str>,
}

impl Write<'_> {
    /// The script invocation with its keys and arguments.
    pub(crate) fn invocation(&self) -> redis::ScriptInvocation<'static> {
        use super::keys::Keys;
        let target = self.site.map_or_else(Keys::defaults, Keys::site);
        let mut invocation = WRITE.prepare_invoke();
        invocation
            .key(target)
            .key(Keys::version())
            .key(Keys::sites())
            .arg(self.mode.as_str())
            .arg(self.site.unwrap_or("*"))
            .arg(Keys::changes())
            .arg(self.set.len());
        for (name, value) in &self.set {
            invocation.arg(*name).arg(value);
        }
        for name in &self.delete {
            invocation.arg(*name);
        }
        invocation
    }
}
