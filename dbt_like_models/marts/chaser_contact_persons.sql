-- The contact persons Chaser holds under each customer, in the Chaser payload's shape plus the customer they are sent under.
with contact_persons as not materialized (
    select * from int_contact_persons
),

sendable as (
    select * from contact_persons
    -- a held-back contact person is never sent (chaser_rejections says why); one of a held-back
    -- customer is here, and the sync sends it while Chaser already holds the customer
    where hold_reason_code is null
),

final as (
    select
        external_id,
        contact_first_name,
        contact_last_name,
        contact_email_address,
        phone_number,
        mobile_number,
        contact_person_status as status,
        -- the routing column: the bulk endpoint is per customer; not part of the payload
        customer_id as customer_external_id
    from sendable
)

select * from final
