-- Every address typed in a customer's or a contact's e-mail field, one row per address, with whether it is valid and which one is the recipient's own.
with customers as (
    select
        customer_id,
        email
    from stg_customers
    where customer_id is not null and email is not null
),

contacts as (
    select
        contact_id,
        email
    from stg_contacts
    where contact_id is not null and email is not null
),

typed as (
    select
        'customer' as owner_entity,
        customer_id as owner_id,
        email
    from customers
    union all
    select
        'contact_person' as owner_entity,
        contact_id as owner_id,
        email
    from contacts
),

split as (
    select
        owner_entity,
        owner_id,
        -- several addresses in one field are separated by commas, semicolons or spaces
        unnest(regexp_split_to_array(email, '[,;\s]+')) as typed_address,
        generate_subscripts(regexp_split_to_array(email, '[,;\s]+'), 1) as part_position
    from typed
),

validated as (
    select
        owner_entity,
        owner_id,
        typed_address,
        row_number() over (
            partition by owner_entity, owner_id order by part_position
        ) as address_position,
        -- an address is used only when it is a valid one (syntax, no DNS); NULL otherwise
        chaser_valid_email(typed_address) as email_address
    from split
    -- separators at either end leave empty pieces, which are no address at all
    where typed_address <> ''
),

ranked as (
    select
        *,
        -- the first valid address is the recipient's own (Chaser's contact_email_address)
        min(address_position) filter (where email_address is not null) over (
            partition by owner_entity, owner_id
        ) as primary_position,
        -- an address typed twice (in any case) is one recipient
        row_number() over (
            partition by owner_entity, owner_id, lower(email_address)
            order by address_position
        ) as repeat_rank
    from validated
),

final as (
    select
        owner_entity,
        owner_id,
        address_position,
        typed_address,
        email_address,
        address_position = coalesce(primary_position, 0) as is_primary,
        email_address is not null and repeat_rank > 1 as is_repeat
    from ranked
)

select * from final
