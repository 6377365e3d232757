create temp table alloc_rows as
with spread as (
    select
        *,
        case scenario
            when 'partly_used' then floor(total_cents * (0.3 + 0.6 * u('a.part', j)))::bigint
            when 'unknown_credit_note' then floor(total_cents * (0.3 + 0.6 * u('a.part', j)))::bigint
            when 'split_with_refund' then floor(total_cents * (0.4 + 0.4 * u('a.part', j)))::bigint
            when 'unknown_invoice' then floor(total_cents * (0.2 + 0.5 * u('a.part', j)))::bigint
            else total_cents
        end as spread_cents,
        case scenario
            when 'refund' then null
            when 'unknown_invoice' then
                format('INV-{:07d}', getvariable('n_invoices') + 1 + ui('a.unknown', j, 1000))
            else invoice_id
        end as target_invoice_id
    from cn_base
    where scenario not in ('unknown_customer', 'bad_currency', 'draft', 'unallocated',
                           'reversed_allocation', 'negative_total')
),
main_plan as (
    select
        *,
        case
            -- Never split a few pence into pieces.
            when spread_cents < 300 then 1
            when scenario in ('fully_used', 'duplicate_key') then 1 + ui('a.k', j, 4)
            when scenario in ('partly_used', 'split_with_refund') then 1 + ui('a.k', j, 3)
            else 1
        end as k
    from spread
),
main_pieces as (
    select *, unnest(generate_series(1, k)) as m from main_plan
),
main_rows as (
    -- Pieces of 60-100% of an even share each; the last piece takes what is left, to the cent.
    select
        j,
        m as seq,
        k,
        credit_note_id,
        target_invoice_id as invoice_id,
        case when m < k then floor(spread_cents / k * (0.6 + 0.4 * u2('a.piece', j, m)))::bigint
             else 0 end as raw_cents,
        spread_cents,
        false as is_reversed,
        0.7 * (m - 1 + u2('a.when', j, m)) / k as position
    from main_pieces
),
main_final as (
    select
        * exclude (raw_cents, spread_cents, k),
        case when seq = k then spread_cents - sum(raw_cents) over (partition by j)
             else raw_cents end as cents
    from main_rows
),
extra_rows as (
    -- The rest of the credit refunded as cash (split), or a refund on top of it (over-allocated).
    select j, 10 as seq, credit_note_id, null as invoice_id, false as is_reversed,
           0.75 + 0.2 * u('a.refund', j) as position,
           total_cents - floor(total_cents * (0.4 + 0.4 * u('a.part', j)))::bigint as cents
    from cn_base where scenario = 'split_with_refund'
    union all
    select j, 10, credit_note_id, null, false, 0.75 + 0.2 * u('a.refund', j),
           greatest(1, floor(total_cents * (0.1 + 0.4 * u('a.over', j))))::bigint
    from cn_base where scenario = 'over_allocated'
    union all
    -- Allocated in full, reversed, then allocated again in part.
    select j, 1, credit_note_id, invoice_id, true, 0.3 * u('a.when', j), total_cents
    from cn_base where scenario = 'reversed_allocation'
    union all
    select j, 2, credit_note_id, invoice_id, false, 0.4 + 0.5 * u('a.when2', j),
           greatest(1, floor(total_cents * (0.3 + 0.5 * u('a.part', j))))::bigint
    from cn_base where scenario = 'reversed_allocation'
    union all
    -- An allocation whose credit note the extract never saw.
    select j, 20,
           format('CN-{:07d}', getvariable('n_credit_notes') + 1 + ui('a.unknowncn', j, 1000)),
           invoice_id, false, 0.5 + 0.4 * u('a.when3', j),
           greatest(1, floor(total_cents * 0.1))::bigint
    from cn_base where scenario = 'unknown_credit_note'
),
all_rows as (
    select j, seq, credit_note_id, invoice_id, is_reversed, position, cents from main_final
    union all
    select j, seq, credit_note_id, invoice_id, is_reversed, position, cents from extra_rows
)
select
    all_rows.*,
    cn.created_at + secs(3600 + position * (cn.alloc_window_secs - 3600)) as allocated_at
from all_rows
join cn_base cn using (j)
