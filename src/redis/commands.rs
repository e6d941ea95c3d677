//! The common commands by name, as in workerman/redis: strings, keys, hashes, lists, sets and
//! sorted sets. Each is [`Client::command`] with its arguments laid out; anything else goes
//! through `command` itself.

use super::{Client, Error, Value};

/// `FnOnce(Result<Value, Error>)`: what every command takes last.
macro_rules! callback_type {
    () => { impl FnOnce(Result<Value, Error>) + 'static };
}

/// Commands of one key: `GET key`.
macro_rules! key_commands {
    ($($method:ident => $name:literal, $what:literal;)*) => {$(
        #[doc = concat!("`", $name, " key`: ", $what)]
        ///
        #[doc = concat!("```no_run\n# fn f(redis: &workerman::redis::Client) {\nredis.", stringify!($method), "(\"key\", |result| println!(\"{result:?}\"));\n# }\n```")]
        pub fn $method(&self, key: impl AsRef<[u8]>, callback: callback_type!()) {
            self.send(&[$name.as_bytes(), key.as_ref()], Box::new(callback));
        }
    )*};
}

/// Commands of a key and one more string: `SET key value`, `HGET key field`.
macro_rules! key_and_value_commands {
    ($($method:ident => $name:literal, $second:literal, $what:literal;)*) => {$(
        #[doc = concat!("`", $name, " key ", $second, "`: ", $what)]
        ///
        #[doc = concat!("```no_run\n# fn f(redis: &workerman::redis::Client) {\nredis.", stringify!($method), "(\"key\", \"", $second, "\", |result| println!(\"{result:?}\"));\n# }\n```")]
        pub fn $method(
            &self,
            key: impl AsRef<[u8]>,
            value: impl AsRef<[u8]>,
            callback: callback_type!(),
        ) {
            self.send(&[$name.as_bytes(), key.as_ref(), value.as_ref()], Box::new(callback));
        }
    )*};
}

/// Commands of a key and an integer: `EXPIRE key seconds`, `INCRBY key n`.
macro_rules! key_and_number_commands {
    ($($method:ident => $name:literal, $second:literal, $what:literal;)*) => {$(
        #[doc = concat!("`", $name, " key ", $second, "`: ", $what)]
        ///
        #[doc = concat!("```no_run\n# fn f(redis: &workerman::redis::Client) {\nredis.", stringify!($method), "(\"key\", 10, |result| println!(\"{result:?}\"));\n# }\n```")]
        pub fn $method(&self, key: impl AsRef<[u8]>, number: i64, callback: callback_type!()) {
            let number = number.to_string();
            self.send(&[$name.as_bytes(), key.as_ref(), number.as_bytes()], Box::new(callback));
        }
    )*};
}

/// Commands of a key and a list: `LPUSH key value...`, `HDEL key field...`.
macro_rules! key_and_list_commands {
    ($($method:ident => $name:literal, $items:literal, $what:literal;)*) => {$(
        #[doc = concat!("`", $name, " key ", $items, "...`: ", $what)]
        ///
        #[doc = concat!("```no_run\n# fn f(redis: &workerman::redis::Client) {\nredis.", stringify!($method), "(\"key\", [\"a\", \"b\"], |result| println!(\"{result:?}\"));\n# }\n```")]
        pub fn $method<I, A>(&self, key: impl AsRef<[u8]>, items: I, callback: callback_type!())
        where
            I: IntoIterator<Item = A>,
            A: AsRef<[u8]>,
        {
            let mut command: Vec<Vec<u8>> = vec![$name.into(), key.as_ref().to_vec()];
            command.extend(items.into_iter().map(|item| item.as_ref().to_vec()));
            self.send(&command, Box::new(callback));
        }
    )*};
}

/// Commands of a list of keys: `DEL key...`.
macro_rules! keys_commands {
    ($($method:ident => $name:literal, $what:literal;)*) => {$(
        #[doc = concat!("`", $name, " key...`: ", $what)]
        ///
        #[doc = concat!("```no_run\n# fn f(redis: &workerman::redis::Client) {\nredis.", stringify!($method), "([\"a\", \"b\"], |result| println!(\"{result:?}\"));\n# }\n```")]
        pub fn $method<I, A>(&self, keys: I, callback: callback_type!())
        where
            I: IntoIterator<Item = A>,
            A: AsRef<[u8]>,
        {
            let mut command: Vec<Vec<u8>> = vec![$name.into()];
            command.extend(keys.into_iter().map(|key| key.as_ref().to_vec()));
            self.send(&command, Box::new(callback));
        }
    )*};
}

/// Commands of a key and a range: `LRANGE key start stop`.
macro_rules! range_commands {
    ($($method:ident => $name:literal, $what:literal;)*) => {$(
        #[doc = concat!("`", $name, " key start stop`: ", $what)]
        ///
        #[doc = concat!("```no_run\n# fn f(redis: &workerman::redis::Client) {\nredis.", stringify!($method), "(\"key\", 0, -1, |result| println!(\"{result:?}\"));\n# }\n```")]
        pub fn $method(
            &self,
            key: impl AsRef<[u8]>,
            start: i64,
            stop: i64,
            callback: callback_type!(),
        ) {
            let (start, stop) = (start.to_string(), stop.to_string());
            self.send(
                &[$name.as_bytes(), key.as_ref(), start.as_bytes(), stop.as_bytes()],
                Box::new(callback),
            );
        }
    )*};
}

impl Client {
    key_commands! {
        get => "GET", "the string at key (nil when missing).";
        incr => "INCR", "adds 1 to the integer at key; the new value.";
        decr => "DECR", "subtracts 1 from the integer at key; the new value.";
        strlen => "STRLEN", "the length of the string at key.";
        getdel => "GETDEL", "the string at key, deleting it.";
        ttl => "TTL", "seconds until key expires (-1: never, -2: no key).";
        pttl => "PTTL", "milliseconds until key expires.";
        persist => "PERSIST", "removes key's expiry.";
        key_type => "TYPE", "the type of the value at key (`string`, `hash`...).";
        keys => "KEYS", "the keys matching a glob pattern (the key argument).";
        hgetall => "HGETALL", "every field and value of a hash (see `Value::into_pairs`).";
        hkeys => "HKEYS", "a hash's field names.";
        hvals => "HVALS", "a hash's values.";
        hlen => "HLEN", "how many fields a hash has.";
        lpop => "LPOP", "removes and returns a list's first element.";
        rpop => "RPOP", "removes and returns a list's last element.";
        llen => "LLEN", "a list's length.";
        smembers => "SMEMBERS", "a set's members.";
        scard => "SCARD", "how many members a set has.";
        zcard => "ZCARD", "how many members a sorted set has.";
    }

    key_and_value_commands! {
        set => "SET", "value", "stores a string.";
        setnx => "SETNX", "value", "stores a string unless key exists (1 if stored).";
        getset => "GETSET", "value", "stores a string, returning the old one.";
        append => "APPEND", "value", "appends to a string; the new length.";
        hget => "HGET", "field", "a hash field's value.";
        hexists => "HEXISTS", "field", "whether a hash has the field.";
        sismember => "SISMEMBER", "member", "whether a set has the member.";
        zscore => "ZSCORE", "member", "a sorted-set member's score.";
        zrank => "ZRANK", "member", "a sorted-set member's rank, lowest score first.";
    }

    key_and_number_commands! {
        incrby => "INCRBY", "increment", "adds to the integer at key; the new value.";
        decrby => "DECRBY", "decrement", "subtracts from the integer at key; the new value.";
        expire => "EXPIRE", "seconds", "sets key to expire in this many seconds (1 if set).";
        pexpire => "PEXPIRE", "milliseconds", "sets key to expire in this many milliseconds.";
    }

    key_and_list_commands! {
        hdel => "HDEL", "field", "removes hash fields; how many were removed.";
        hmget => "HMGET", "field", "the values of hash fields, in order (nil for missing).";
        lpush => "LPUSH", "element", "prepends elements to a list; the new length.";
        rpush => "RPUSH", "element", "appends elements to a list; the new length.";
        sadd => "SADD", "member", "adds set members; how many were new.";
        srem => "SREM", "member", "removes set members; how many were removed.";
        zrem => "ZREM", "member", "removes sorted-set members; how many were removed.";
    }

    keys_commands! {
        del => "DEL", "deletes keys; how many existed.";
        exists => "EXISTS", "how many of the keys exist.";
        mget => "MGET", "the strings at the keys, in order (nil for missing).";
    }

    range_commands! {
        lrange => "LRANGE", "a list's elements from start to stop (inclusive; -1 is the last).";
        zrange => "ZRANGE", "a sorted set's members by rank from start to stop.";
    }

    /// `SETEX key seconds value`: stores a string that expires.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.setex("session:1", 3600, "data", |result| assert!(result.is_ok()));
    /// # }
    /// ```
    pub fn setex(
        &self,
        key: impl AsRef<[u8]>,
        seconds: u64,
        value: impl AsRef<[u8]>,
        callback: callback_type!(),
    ) {
        let seconds = seconds.to_string();
        self.send(
            &[
                b"SETEX".as_ref(),
                key.as_ref(),
                seconds.as_bytes(),
                value.as_ref(),
            ],
            Box::new(callback),
        );
    }

    /// `MSET key value [key value ...]`: stores several strings.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.mset([("a", "1"), ("b", "2")], |result| assert!(result.is_ok()));
    /// # }
    /// ```
    pub fn mset<I, K, V>(&self, pairs: I, callback: callback_type!())
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut command: Vec<Vec<u8>> = vec![b"MSET".to_vec()];
        for (key, value) in pairs {
            command.push(key.as_ref().to_vec());
            command.push(value.as_ref().to_vec());
        }
        self.send(&command, Box::new(callback));
    }

    /// `HSET key field value`: sets a hash field; 1 if it is new.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.hset("user:1", "name", "Ada", |result| println!("{result:?}"));
    /// # }
    /// ```
    pub fn hset(
        &self,
        key: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        callback: callback_type!(),
    ) {
        self.send(
            &[
                b"HSET".as_ref(),
                key.as_ref(),
                field.as_ref(),
                value.as_ref(),
            ],
            Box::new(callback),
        );
    }

    /// `HSET key field value [field value ...]`: sets several hash fields (workerman/redis's
    /// `hMSet`); how many were new.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.hmset("user:1", [("name", "Ada"), ("lang", "en")], |result| println!("{result:?}"));
    /// # }
    /// ```
    pub fn hmset<I, F, V>(&self, key: impl AsRef<[u8]>, pairs: I, callback: callback_type!())
    where
        I: IntoIterator<Item = (F, V)>,
        F: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut command: Vec<Vec<u8>> = vec![b"HSET".to_vec(), key.as_ref().to_vec()];
        for (field, value) in pairs {
            command.push(field.as_ref().to_vec());
            command.push(value.as_ref().to_vec());
        }
        self.send(&command, Box::new(callback));
    }

    /// `HINCRBY key field increment`: adds to an integer hash field; the new value.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.hincrby("user:1", "visits", 1, |result| println!("{result:?}"));
    /// # }
    /// ```
    pub fn hincrby(
        &self,
        key: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
        increment: i64,
        callback: callback_type!(),
    ) {
        let increment = increment.to_string();
        self.send(
            &[
                b"HINCRBY".as_ref(),
                key.as_ref(),
                field.as_ref(),
                increment.as_bytes(),
            ],
            Box::new(callback),
        );
    }

    /// `ZADD key score member`: adds (or re-scores) a sorted-set member; 1 if it is new.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.zadd("scores", 12.5, "ada", |result| println!("{result:?}"));
    /// # }
    /// ```
    pub fn zadd(
        &self,
        key: impl AsRef<[u8]>,
        score: f64,
        member: impl AsRef<[u8]>,
        callback: callback_type!(),
    ) {
        let score = score.to_string();
        self.send(
            &[
                b"ZADD".as_ref(),
                key.as_ref(),
                score.as_bytes(),
                member.as_ref(),
            ],
            Box::new(callback),
        );
    }

    /// `ZINCRBY key increment member`: adds to a member's score; the new score.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.zincrby("scores", 1.0, "ada", |result| println!("{result:?}"));
    /// # }
    /// ```
    pub fn zincrby(
        &self,
        key: impl AsRef<[u8]>,
        increment: f64,
        member: impl AsRef<[u8]>,
        callback: callback_type!(),
    ) {
        let increment = increment.to_string();
        self.send(
            &[
                b"ZINCRBY".as_ref(),
                key.as_ref(),
                increment.as_bytes(),
                member.as_ref(),
            ],
            Box::new(callback),
        );
    }

    /// `ZRANGEBYSCORE key min max`: members with scores in a range (`-inf`, `(5` work).
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.zrangebyscore("scores", "10", "+inf", |result| println!("{result:?}"));
    /// # }
    /// ```
    pub fn zrangebyscore(
        &self,
        key: impl AsRef<[u8]>,
        min: impl AsRef<[u8]>,
        max: impl AsRef<[u8]>,
        callback: callback_type!(),
    ) {
        self.send(
            &[
                b"ZRANGEBYSCORE".as_ref(),
                key.as_ref(),
                min.as_ref(),
                max.as_ref(),
            ],
            Box::new(callback),
        );
    }

    /// `PING`: `PONG` when the server is up.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.ping(|result| println!("{result:?}"));
    /// # }
    /// ```
    pub fn ping(&self, callback: callback_type!()) {
        self.send(&[b"PING"], Box::new(callback));
    }

    /// `SELECT db`: switches database; the client selects it again after a reconnect.
    ///
    /// ```no_run
    /// # fn f(redis: &workerman::redis::Client) {
    /// redis.select(2, |result| assert!(result.is_ok()));
    /// # }
    /// ```
    pub fn select(&self, db: u32, callback: callback_type!()) {
        let db = db.to_string();
        self.send(&[b"SELECT".as_ref(), db.as_bytes()], Box::new(callback));
    }
}
