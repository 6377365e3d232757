-- The credit notes Chaser holds for the months of issue being built, in the Chaser payload's shape.
with credit_notes as (
    select * from int_credit_note_balances
    -- the partition: credit notes issued in [window_start, window_end); their use counts whenever made
    where issue_date >= $window_start and issue_date < $window_end
),

sendable as (
    select * from credit_notes
    -- a held-back credit note is never sent (chaser_rejections says why); a credit note of a
    -- held-back customer is here, and the sync sends it while Chaser already holds the customer
    where hold_reason_code is null
),

final as (
    select
        credit_note_id,
        credit_note_number,
        customer_id as customer_external_id,
        currency_code,
        -- Chaser dates: YYYY-MM-DDTHH:mm:ss.sssZ in UTC
        strftime(issue_date, '%Y-%m-%dT%H:%M:%S.%g') || 'Z' as date,
        total_amount::decimal(18, 2) as total,
        remaining_amount::decimal(18, 2) as remaining_credit,
        credit_note_status as status
    from sendable
)

select * from final
