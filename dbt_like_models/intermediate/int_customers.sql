-- Each customer with its Chaser field values worked out, and why it is held back (NULL when it is sent).
with customers as not materialized (
    select * from stg_customers
),

email_addresses as (
    select * from int_email_addresses
    where owner_entity = 'customer'
),

primary_addresses as (
    select
        owner_id as customer_id,
        email_address
    from email_addresses
    -- the first valid address of the field is the customer's own; the others become contact
    -- persons (int_contact_persons)
    where is_primary
),

normalised as (
    select
        customers.customer_id,
        customers.company_name,
        customers.contact_first_name,
        customers.contact_last_name,
        customers.email,
        -- sent only when valid (syntax, no DNS); otherwise left out and reported
        primary_addresses.email_address as contact_email_address,
        customers.phone,
        -- phone numbers go out in E.164 when they can be read, in the customer's country when it
        -- is an ISO 3166 code, else in the default country (CHASER_DEFAULT_COUNTRY)
        chaser_e164(customers.phone, customers.country) as phone_e164,
        customers.mobile,
        -- Chaser texts the mobile: E.164 or nothing
        chaser_e164(customers.mobile, customers.country) as mobile_number,
        customers.address_line1,
        customers.address_line2,
        customers.city,
        customers.region,
        customers.postal_code,
        customers.country,
        case
            -- a customer removed from the ledger is archived in Chaser, which stops its reminders
            when customers.is_deleted then 'ARCHIVED'
            -- a customer whose archived flag is unknown is treated as active
            when coalesce(customers.is_archived, false) then 'ARCHIVED'
            else 'ACTIVE'
        end as customer_status,
        customers.is_deleted,
        customers.deleted_at,
        customers.duplicate_row_count
    from customers
    left join primary_addresses
        on customers.customer_id = primary_addresses.customer_id
),

held as (
    select
        *,
        -- a phone number that cannot be read is still sent, as the customer wrote it
        coalesce(phone_e164, phone) as phone_number,
        -- the first rule a customer breaks holds it back; its documents still reach the marts
        -- (the sync sends them while Chaser already holds the customer)
        case
            when customer_id is null then 'missing_key'
            -- Chaser requires a company name
            when company_name is null then 'missing_company_name'
        end as hold_reason_code
    from normalised
),

final as (
    select
        customer_id,
        company_name,
        contact_first_name,
        contact_last_name,
        email,
        contact_email_address,
        phone,
        phone_e164,
        phone_number,
        mobile,
        mobile_number,
        address_line1,
        address_line2,
        city,
        region,
        postal_code,
        country,
        customer_status,
        is_deleted,
        deleted_at,
        duplicate_row_count,
        hold_reason_code,
        case hold_reason_code
            when 'missing_key' then 'customer_id'
            when 'missing_company_name' then 'company_name'
        end as hold_field,
        case hold_reason_code
            when 'missing_key' then format(
                'A customer row has no customer_id, so Chaser cannot match it (company name: {}); '
                || 'it was not sent.',
                coalesce(company_name, 'none')
            )
            when 'missing_company_name' then format(
                'Customer {} has no company name, which Chaser requires; it was not sent, and its '
                || 'invoices, credit notes, contact persons and overpayments go to Chaser only '
                || 'while Chaser already holds the customer.',
                customer_id
            )
        end as hold_detail
    from held
)

select * from final
