//! The least-privilege Redis ACLs of a fleet (documented in docs/fleet.md;
//! the tests run replicas and operators under exactly these).
//!
//! A replica reads the state, writes its own report and the leases, and
//! writes a site's hash only to latch a rollback or, as the site's leader,
//! its stage clock: it cannot write the defaults. The operators' command
//! can do everything under the prefix.
//!
//! ```text
//! ACL SETUSER async-upload-replica on >PASSWORD resetkeys resetchannels -@all <REPLICA_ACL>
//! ACL SETUSER async-upload-operator on >PASSWORD resetkeys resetchannels -@all <OPERATOR_ACL>
//! ```

/// The rules of a replica's ACL user (after `resetkeys resetchannels -@all`).
pub const REPLICA_ACL: &str = "+ping +info +select +evalsha +script|load \
    +type +get +mget +exists +hget +hmget +hgetall +smembers +zrange \
    +set +incr +hset +hdel +sadd +pexpire +zadd +zremrangebyscore +publish \
    +subscribe +unsubscribe \
    %R~async-upload:v1:* \
    %RW~async-upload:v1:site:* %RW~async-upload:v1:version %RW~async-upload:v1:epoch \
    %RW~async-upload:v1:sites %RW~async-upload:v1:replica:* %RW~async-upload:v1:replicas \
    %RW~async-upload:v1:lease:* \
    &async-upload:v1:changes:*";

/// The rules of the operators' ACL user (`async-upload fleet`).
pub const OPERATOR_ACL: &str = "+ping +info +select +evalsha +script|load \
    +type +get +mget +exists +hget +hmget +hgetall +smembers +zrange \
    +set +incr +hset +hdel +sadd +publish \
    ~async-upload:v1:* &async-upload:v1:*";
