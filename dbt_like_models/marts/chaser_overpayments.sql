-- The overpayments Chaser holds for the months of payment being built: cash received on account, and the surplus of payments past an invoice's total, in the Chaser payload's shape.
with overpayments as (
    select * from int_overpayments
    -- the partition: payments received in [window_start, window_end); their later use counts
    -- whenever made
    where paid_at >= $window_start and paid_at < $window_end
),

sendable as (
    select * from overpayments
    -- a held-back overpayment is never sent (chaser_rejections says why); one of a held-back
    -- customer is here, and the sync sends it while Chaser already holds the customer
    where hold_reason_code is null
),

final as (
    select
        overpayment_id,
        customer_id as customer_external_id,
        currency_code,
        -- Chaser dates: YYYY-MM-DDTHH:mm:ss.sssZ in UTC
        strftime(paid_at, '%Y-%m-%dT%H:%M:%S.%g') || 'Z' as date,
        received_amount::decimal(18, 2) as total,
        remaining_amount::decimal(18, 2) as remaining_credit,
        overpayment_status as status
    from sendable
)

select * from final
