-- Each customer with its Chaser field values worked out, and why it is held back (NULL when it is sent).
with customers as (
    select * from stg_customers
),

normalised as (
    select
        customer_id,
        company_name,
        contact_first_name,
        contact_last_name,
        email,
        -- an address is sent only when it is a valid one (syntax, no DNS); otherwise left out
        chaser_valid_email(email) as contact_email_address,
        phone,
        -- phone numbers go out in E.164 when they can be read, in the customer's country when it is
        -- an ISO 3166 code, else in the default country (CHASER_DEFAULT_COUNTRY)
        chaser_e164(phone, country) as phone_e164,
        mobile,
        -- Chaser texts the mobile: E.164 or nothing
        chaser_e164(mobile, country) as mobile_number,
        address_line1,
        address_line2,
        city,
        region,
        postal_code,
        country,
        -- a customer whose archived flag is unknown is treated as active
        case when coalesce(is_archived, false) then 'ARCHIVED' else 'ACTIVE' end as customer_status,
        duplicate_row_count
    from customers
),

held as (
    select
        *,
        -- a phone number that cannot be read is still sent, as the customer wrote it
        coalesce(phone_e164, phone) as phone_number,
        -- the first rule a customer breaks holds it back, with its invoices and credit notes
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
        duplicate_row_count,
        hold_reason_code,
        case hold_reason_code
            when 'missing_key' then format(
                'A customer row has no customer_id, so Chaser cannot match it (company name: {}); '
                || 'it was not sent.',
                coalesce(company_name, 'none')
            )
            when 'missing_company_name' then format(
                'Customer {} has no company name, which Chaser requires; it was not sent, '
                || 'nor were its invoices and credit notes.',
                customer_id
            )
        end as hold_detail
    from held
)

select * from final
