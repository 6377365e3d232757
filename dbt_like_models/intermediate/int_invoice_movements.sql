-- Every payment and counted allocation applied to an invoice, in the order the money arrived, with the running applied sum and how much of each went past the invoice's total.
with invoices as (
    select
        invoice_id,
        total_amount
    from stg_invoices
    where invoice_id is not null
),

payments as not materialized (
    select * from stg_payments
),

allocations as not materialized (
    select * from int_allocations
),

applied_payments as (
    select
        invoice_id,
        'payment' as movement_kind,
        payment_id as movement_id,
        payment_amount as movement_amount,
        paid_at as moved_at
    from payments
    -- a reversed or deleted payment counts as never made; an unknown reversed flag counts, and
    -- so does a payment without a key (reported): never chase a payer
    where invoice_id is not null and not coalesce(is_reversed, false) and not is_deleted
),

applied_allocations as (
    select
        invoice_id,
        'allocation' as movement_kind,
        allocation_id as movement_id,
        allocation_amount as movement_amount,
        allocated_at as moved_at
    from allocations
    -- only allocations that count (same customer and currency, usable credit or cash, an
    -- invoice that can be paid); int_allocations says why the others do not
    where is_counted and invoice_id is not null
),

movements as (
    select * from applied_payments
    union all
    select * from applied_allocations
),

ordered as (
    select
        movements.invoice_id,
        movements.movement_kind,
        movements.movement_id,
        movements.movement_amount,
        movements.moved_at,
        invoices.total_amount,
        -- the order money arrived: time, then id (payments and allocations share one order, ids
        -- compared as text across both kinds, 'A-1' < 'P-1'); a movement without a time sorts
        -- last (chaser_rejections reports a PAID invoice left without a fully paid date)
        row_number() over (
            partition by movements.invoice_id
            order by movements.moved_at, movements.movement_id, movements.movement_amount
        ) as movement_rank,
        -- a movement without an amount counts as nothing (chaser_rejections: missing_amount);
        -- summed as NULL it would leave the sum unknown, and an unknown sum is never "below
        -- the total", so its time became the fully paid date
        sum(coalesce(movements.movement_amount, 0)) over (
            partition by movements.invoice_id
            order by movements.moved_at, movements.movement_id, movements.movement_amount
            rows between unbounded preceding and current row
        ) as running_applied_amount,
        -- when the next movement of the invoice was applied (NULL for the last): the start of
        -- the stretch after this one, which int_invoice_balances reads without a window of its own
        lead(movements.moved_at) over (
            partition by movements.invoice_id
            order by movements.moved_at, movements.movement_id, movements.movement_amount
        ) as next_moved_at
    from movements
    -- money pointing at an unknown invoice is applied to nothing; chaser_rejections reports it
    inner join invoices
        on movements.invoice_id = invoices.invoice_id
),

final as (
    select
        invoice_id,
        movement_kind,
        movement_id,
        movement_amount,
        moved_at,
        movement_rank,
        running_applied_amount,
        -- NULL when the invoice has no total (nothing is below an unknown total)
        running_applied_amount < total_amount as is_below_total,
        next_moved_at,
        case
            -- without a total (or with a negative one, held back) nothing can be past it
            when total_amount is null or total_amount < 0 then 0.00
            -- the part of this movement above the total (a refund is negative and takes nothing
            -- past it): applied after it, less the larger of the total and the sum before it
            else greatest(
                coalesce(
                    running_applied_amount
                    - greatest(
                        total_amount, running_applied_amount - coalesce(movement_amount, 0)
                    ),
                    0
                ),
                0
            )
        end as surplus_amount
    from ordered
)

select * from final
