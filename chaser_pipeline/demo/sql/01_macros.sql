create temp macro u(tag, i) as (hash(getvariable('seed'), tag, i) % 1000000007)::double / 1000000007;
create temp macro u2(tag, i, m) as
    (hash(getvariable('seed'), tag, i, m) % 1000000007)::double / 1000000007;
create temp macro ui(tag, i, n) as (hash(getvariable('seed'), tag, i) % n)::bigint;
create temp macro pick(choices, tag, i) as choices[1 + ui(tag, i, len(choices))];
create temp macro bucket(i, m) as ((i * 7919 + getvariable('bucket_offset')) % m)::int;
create temp macro money(cents) as (cents::bigint * 0.01)::decimal(18, 2);
create temp macro secs(x) as to_seconds(floor(x)::bigint);
