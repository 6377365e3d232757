create temp table pay_rows as
with pieces as (
    select *, unnest(generate_series(1, k)) as m
    from inv_plan
    where profile <> 'none'
),
raw as (
    select
        i,
        m as seq,
        invoice_id,
        k,
        profile,
        pay_cents,
        total_cents,
        created_at,
        pay_window_secs,
        case
            when profile = 'float_cents' then [10, 20][m]
            when profile = 'float_pounds' then [10010, 20020][m]
            when profile = 'bounced_then_paid' then total_cents
            when profile = 'overpaid' then
                case when m = 1 then total_cents
                     else greatest(1, floor(total_cents * (0.01 + 0.99 * u('p.over', i))))::bigint
                end
            when m < k then floor(pay_cents / k * (0.6 + 0.4 * u2('p.piece', i, m)))::bigint
            else 0
        end as raw_cents,
        profile = 'bounced_then_paid' and m = 1 as is_reversed,
        (m - 1 + u2('p.when', i, m)) / k as position
    from pieces
),
amounted as (
    select
        * exclude (raw_cents),
        case
            when profile in ('float_cents', 'float_pounds', 'bounced_then_paid', 'overpaid')
                then raw_cents
            when seq = k then pay_cents - sum(raw_cents) over (partition by i)
            else raw_cents
        end as cents
    from raw
),
timed as (
    select
        i,
        seq,
        invoice_id,
        cents,
        is_reversed,
        created_at + secs(3600 + position * (pay_window_secs - 7200)) as paid_at,
        profile
    from amounted
),
bounced as (
    -- Now and then a first payment bounces: the same amount, earlier, reversed.
    select i, 0 as seq, invoice_id, cents, true as is_reversed,
           created_at + secs(1800 + 0.5 * epoch(paid_at - created_at)) as paid_at, profile
    from timed
    join inv_base using (i, invoice_id)
    where seq = 1 and profile in ('partial', 'full') and u('p.bounce', i) < 0.05
),
orphans as (
    -- Payments against invoices the extract never saw.
    select
        getvariable('n_invoices') + i as i,
        1 as seq,
        format('INV-{:07d}', getvariable('n_invoices') + 1 + ui('p.orphan', i, 1000)) as invoice_id,
        100 + ui('p.orphanamount', i, 100000) as cents,
        false as is_reversed,
        timestamp '2023-01-02' + secs(u('p.orphanwhen', i) * 120000000) as paid_at,
        'orphan' as profile
    from range(1, greatest(1, getvariable('n_invoices') // 200) + 1) t(i)
)
select * from timed
union all select * from bounced
union all select * from orphans
