-- Each contact person of a customer (a ledger contact, or an extra valid address in the customer's e-mail field), with its Chaser fields worked out and why it is held back (NULL when it is sent).
with contacts as not materialized (
    select * from stg_contacts
),

email_addresses as not materialized (
    select * from int_email_addresses
),

customers as (
    select
        customer_id,
        country,
        customer_status,
        hold_reason_code as customer_hold_reason_code
    from int_customers
    where customer_id is not null
),

keyless_customers as (
    select
        count(*) as keyless_customer_count,
        string_agg(coalesce(company_name, '(no company name)'), ', ' order by company_name)
            as keyless_company_names
    from int_customers
    where customer_id is null
),

chaser_holdings as (
    select
        key as external_id
    from chaser_sync.holding_keys
    where object = 'contact_persons'
),

contact_addresses as (
    select
        owner_id as contact_id,
        email_address
    from email_addresses
    -- a contact's own address is the first valid one of its field
    where owner_entity = 'contact_person' and is_primary
),

ledger_contacts as (
    select
        contacts.contact_id as external_id,
        contacts.customer_id,
        contacts.first_name as contact_first_name,
        contacts.last_name as contact_last_name,
        contacts.email,
        contact_addresses.email_address as contact_email_address,
        contacts.phone,
        -- phones normalised like the customer's: E.164 in the customer's country when it is an
        -- ISO 3166 code, else in the default country (CHASER_DEFAULT_COUNTRY)
        chaser_e164(contacts.phone, customers.country) as phone_e164,
        contacts.mobile,
        -- Chaser texts the mobile: E.164 or nothing
        chaser_e164(contacts.mobile, customers.country) as mobile_number,
        case
            -- a contact archived or removed in the ledger is archived in Chaser
            when contacts.is_deleted or coalesce(contacts.is_archived, false) then 'ARCHIVED'
            else 'ACTIVE'
        end as contact_person_status,
        'contact' as contact_person_source,
        contacts.is_deleted,
        contacts.deleted_at,
        contacts.duplicate_row_count
    from contacts
    left join contact_addresses
        on contacts.contact_id = contact_addresses.contact_id
    left join customers
        on contacts.customer_id = customers.customer_id
),

extra_addresses as (
    select
        -- one contact person per extra address: the customer's id, ':' and the address
        email_addresses.owner_id || ':' || lower(email_addresses.email_address) as external_id,
        email_addresses.owner_id as customer_id,
        cast(null as varchar) as contact_first_name,
        cast(null as varchar) as contact_last_name,
        email_addresses.typed_address as email,
        email_addresses.email_address as contact_email_address,
        cast(null as varchar) as phone,
        cast(null as varchar) as phone_e164,
        cast(null as varchar) as mobile,
        cast(null as varchar) as mobile_number,
        -- an extra address of an archived (or removed) customer is archived with it
        coalesce(customers.customer_status, 'ACTIVE') as contact_person_status,
        'customer_email' as contact_person_source,
        false as is_deleted,
        cast(null as timestamp) as deleted_at,
        1 as duplicate_row_count
    from email_addresses
    left join customers
        on email_addresses.owner_id = customers.customer_id
    -- every valid address after the first becomes a contact person of the customer; an address
    -- typed twice is one person
    where
        email_addresses.owner_entity = 'customer'
        and email_addresses.email_address is not null
        and not email_addresses.is_primary
        and not email_addresses.is_repeat
),

current_persons as (
    select * from ledger_contacts
    union all
    select * from extra_addresses
    -- a ledger contact whose id happens to look like a split address wins
    where external_id not in (select contact_id from contacts where contact_id is not null)
),

withdrawn_addresses as (
    select
        chaser_holdings.external_id,
        -- a normalised address holds no ':', so the customer's id is everything before the last
        regexp_extract(chaser_holdings.external_id, '^(.*):[^:]*$', 1) as customer_id,
        cast(null as varchar) as contact_first_name,
        cast(null as varchar) as contact_last_name,
        regexp_extract(chaser_holdings.external_id, ':([^:]*)$', 1) as email,
        regexp_extract(chaser_holdings.external_id, ':([^:]*)$', 1) as contact_email_address,
        cast(null as varchar) as phone,
        cast(null as varchar) as phone_e164,
        cast(null as varchar) as mobile,
        cast(null as varchar) as mobile_number,
        -- an address gone from the customer's e-mail field is archived in Chaser
        'ARCHIVED' as contact_person_status,
        'withdrawn' as contact_person_source,
        false as is_deleted,
        cast(null as timestamp) as deleted_at,
        1 as duplicate_row_count
    from chaser_holdings
    left join current_persons
        on chaser_holdings.external_id = current_persons.external_id
    where current_persons.external_id is null and chaser_holdings.external_id like '%:%'
),

persons as (
    select * from current_persons
    union all
    select * from withdrawn_addresses
),

held as (
    select
        persons.*,
        -- a phone number that cannot be read is still sent, as the contact wrote it
        coalesce(persons.phone_e164, persons.phone) as phone_number,
        customers.customer_hold_reason_code,
        keyless_customers.keyless_customer_count,
        keyless_customers.keyless_company_names,
        -- the first rule a contact person breaks holds it back before the mart; a held-back
        -- customer does not hold back its contact persons (the sync waits for the customer)
        case
            when persons.external_id is null then 'missing_key'
            when persons.customer_id is null then 'missing_customer_id'
            when customers.customer_id is null and keyless_customers.keyless_customer_count > 0
                then 'customer_key_missing'
            when customers.customer_id is null then 'unknown_customer'
        end as hold_reason_code
    from persons
    left join customers
        on persons.customer_id = customers.customer_id
    cross join keyless_customers
),

final as (
    select
        external_id,
        customer_id,
        contact_first_name,
        contact_last_name,
        email,
        contact_email_address,
        phone,
        phone_e164,
        phone_number,
        mobile,
        mobile_number,
        contact_person_status,
        contact_person_source,
        is_deleted,
        deleted_at,
        duplicate_row_count,
        customer_hold_reason_code,
        hold_reason_code,
        case hold_reason_code
            when 'missing_key' then 'contact_id'
            else 'customer_id'
        end as hold_field,
        case hold_reason_code
            when 'missing_key' then format(
                'A contact row has no contact_id, so Chaser cannot match it (name: {} {}, '
                || 'customer {}); it was not sent.',
                coalesce(contact_first_name, ''),
                coalesce(contact_last_name, ''),
                coalesce(customer_id, 'none')
            )
            when 'missing_customer_id' then format(
                'Contact {} ({} {}) names no customer; it was not sent.',
                external_id,
                coalesce(contact_first_name, ''),
                coalesce(contact_last_name, '')
            )
            when 'customer_key_missing' then format(
                'Contact {} names customer {}, which no customer row with a customer_id is; the '
                || 'ledger has {} customer row(s) without a customer_id ({}), which may be it: '
                || 'give that row its id. The contact was not sent.',
                external_id,
                customer_id,
                keyless_customer_count,
                keyless_company_names
            )
            when 'unknown_customer' then format(
                'Contact {} names customer {}, which is not in the ledger; it was not sent.',
                external_id,
                customer_id
            )
        end as hold_detail
    from held
)

select * from final
