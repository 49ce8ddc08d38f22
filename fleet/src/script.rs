//! The two Lua scripts of the shared state: every write goes through one
//! (check, write, mint the epoch, bump the version, publish, atomically),
//! and the replicas read the whole state through the other (one
//! consistent snapshot, every value bounded, a key of the wrong type
//! reported as data instead of failing the read).
//!
//! Atomicity is what makes the rollback latch exactly-once (of any number
//! of replicas that see one breach only the first call finds the latch
//! open) and the stage clock compare-and-set (two leaders for a moment
//! never advance a stage twice).

use std::sync::LazyLock;

use super::keys::{Keys, PREFIX, TEXT_LIMIT};

/// `KEYS`: the target hash, the version, the sites set, the epoch.
/// `ARGV`: mode, site (`*` for the defaults), channel, an epoch to mint if
/// the store has none, the expected stage and stage clock (mode `stage`),
/// the number of field/value pairs, the pairs, then fields to delete. A
/// value `$version` is replaced by the new version.
///
/// Modes: `set` always writes; `seed` only into a store that has never
/// held state (no epoch); `latch` only if the site is not rolled back (in
/// any spelling the replicas accept as true); `stage` only if the site's
/// stage and clock are the expected ones. Returns the new version, or 0
/// when the mode's check wrote nothing.
///
/// A version that is not a whole number below 2^53 (Lua's exact integers)
/// starts again from the server's clock in milliseconds, so a bad value
/// never blocks an operator's write and the new version is one no replica
/// has seen.
const WRITE_SOURCE: &str = r"
local target, vkey, skey, ekey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local mode, site, channel = ARGV[1], ARGV[2], ARGV[3]
local truthy = {['true'] = true, ['1'] = true, ['yes'] = true, ['on'] = true}
local etype = redis.call('TYPE', ekey)['ok']
if mode == 'seed' and etype ~= 'none' then return 0 end
if mode == 'latch' then
  local v = redis.call('HGET', target, 'rolled_back')
  if v and truthy[string.lower(string.match(v, '^%s*(.-)%s*$'))] then return 0 end
end
if mode == 'stage' then
  local now = redis.call('HMGET', target, 'stage', 'stage_entered_ms')
  if (now[1] or '') ~= ARGV[5] or (now[2] or '') ~= ARGV[6] then return 0 end
end
local epoch = '-'
if etype == 'none' then
  redis.call('SET', ekey, ARGV[4])
  epoch = ARGV[4]
elseif etype == 'string' then
  epoch = string.sub(redis.call('GET', ekey), 1, 64)
end
local version = redis.pcall('INCR', vkey)
if type(version) ~= 'number' or version >= 9007199254740991 then
  -- Start again from the server's clock in ms: never a version a replica
  -- has seen (1 might be), and above every small version before it.
  local now = redis.call('TIME')
  version = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('SET', vkey, string.format('%d', version))
end
local text = string.format('%d', version)
local i = 8
for _ = 1, tonumber(ARGV[7]) do
  local value = ARGV[i + 1]
  if value == '$version' then value = text end
  redis.call('HSET', target, ARGV[i], value)
  i = i + 2
end
for j = i, #ARGV do redis.call('HDEL', target, ARGV[j]) end
redis.call('HSET', target, 'version', text)
if site ~= '*' then redis.pcall('SADD', skey, site) end
redis.call('PUBLISH', channel, epoch .. ' ' .. text .. ' ' .. site)
return version
";

/// `ARGV`: the text limit, the prefix, then site names to read besides
/// the sites set's (those this replica knows, in case the set is broken).
/// Returns `{epoch, version, defaults, sites set, {name, site hash, …}}`,
/// each entry `{type, value}` (a string, or a hash as a flat array) or
/// `{type}` when the key is absent (`none`) or of another type; every
/// value is cut to one byte over the limit (so the reader can tell).
const READ_SOURCE: &str = r"#!lua flags=no-writes
local limit, prefix = tonumber(ARGV[1]), ARGV[2]
local function cut(v) if #v > limit then return string.sub(v, 1, limit + 1) end return v end
local function kind(key) return redis.call('TYPE', key)['ok'] end
local function text(key)
  local t = kind(key)
  if t ~= 'string' then return {t} end
  return {t, cut(redis.call('GET', key))}
end
local function hash(key)
  local t = kind(key)
  if t ~= 'hash' then return {t} end
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat do flat[i] = cut(flat[i]) end
  return {t, flat}
end
local names, seen = {}, {}
local function add(name) if not seen[name] then seen[name] = true; names[#names + 1] = name end end
local skind = kind(prefix .. 'sites')
if skind == 'set' then
  for _, name in ipairs(redis.call('SMEMBERS', prefix .. 'sites')) do add(cut(name)) end
end
for i = 3, #ARGV do add(ARGV[i]) end
local sites = {}
for _, name in ipairs(names) do
  sites[#sites + 1] = name
  sites[#sites + 1] = hash(prefix .. 'site:' .. name)
end
return {text(prefix .. 'epoch'), text(prefix .. 'version'), hash(prefix .. 'defaults'), {skind}, sites}
";

/// The write script, hashed once (`EVALSHA`, falling back to `EVAL` the first time).
pub(crate) static WRITE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(WRITE_SOURCE));

/// The read script (`no-writes`: allowed on a read-only connection).
pub(crate) static READ: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(READ_SOURCE));

/// What a write checks before it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Always write.
    Set,
    /// Write only into a store that has never held state (no epoch): the
    /// environment seeds a new store.
    Seed,
    /// Write only if the site is not rolled back (the latch).
    Latch,
    /// Write only if the site's stage clock is the expected one.
    Stage {
        /// The stage and clock expected now (`None`: no stage yet; a clock
        /// of `None`: a stage written without one).
        expected: Option<(u32, Option<u64>)>,
    },
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Set => "set",
            Mode::Seed => "seed",
            Mode::Latch => "latch",
            Mode::Stage { .. } => "stage",
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
    /// The script invocation with its keys and arguments, on the keys of `keys`.
    pub(crate) fn invocation(&self, keys: &Keys) -> redis::ScriptInvocation<'static> {
        let target = self.site.map_or_else(Keys::defaults, Keys::site);
        let (stage, clock) = match self.mode {
            Mode::Stage {
                expected: Some((stage, clock)),
            } => (
                stage.to_string(),
                clock.map(|c| c.to_string()).unwrap_or_default(),
            ),
            _ => (String::new(), String::new()),
        };
        let mut invocation = WRITE.prepare_invoke();
        invocation
            .key(target)
            .key(Keys::version())
            .key(Keys::sites())
            .key(Keys::epoch())
            .arg(self.mode.as_str())
            .arg(self.site.unwrap_or("*"))
            .arg(keys.changes())
            .arg(mint_epoch())
            .arg(stage)
            .arg(clock)
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

/// The read invocation, reading `known` sites besides the sites set's.
pub(crate) fn read<'a>(
    known: impl IntoIterator<Item = &'a str>,
) -> redis::ScriptInvocation<'static> {
    let mut invocation = READ.prepare_invoke();
    invocation.arg(TEXT_LIMIT).arg(PREFIX);
    for site in known {
        invocation.arg(site);
    }
    invocation
}

/// A fresh random store epoch: 32 lowercase hex digits.
pub(crate) fn mint_epoch() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}
