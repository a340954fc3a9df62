-- DAC7 source contract: the tables the pipeline reads.
-- Portable DDL (SQLite, DuckDB, PostgreSQL, MariaDB/MySQL). Table and column names are a
-- public contract: later versions may add optional columns or tables, never rename these.
-- Money: integers in the currency's ISO 4217 minor unit. Timestamps: UTC, without zone.

CREATE TABLE sellers (
    seller_id                    VARCHAR(64)  NOT NULL PRIMARY KEY,
    seller_type                  VARCHAR(16)  NOT NULL,   -- 'individual' | 'entity'
    first_name                   VARCHAR(200),            -- individuals
    last_name                    VARCHAR(200),            -- individuals
    legal_name                   VARCHAR(200),            -- entities
    birth_date                   DATE,
    birth_city                   VARCHAR(200),
    birth_country                CHAR(2),
    residence_country            CHAR(2),                 -- primary residence / registered office
    address_street               VARCHAR(200),
    address_building             VARCHAR(200),
    address_post_code            VARCHAR(200),
    address_city                 VARCHAR(200),
    address_country              CHAR(2),
    vat_id                       VARCHAR(200),
    business_registration_number VARCHAR(200),
    is_governmental              BOOLEAN      NOT NULL DEFAULT FALSE,
    is_listed                    BOOLEAN      NOT NULL DEFAULT FALSE,
    language                     VARCHAR(35),             -- optional: the statement's language, an IETF tag (de, fr-BE)
    gvs_jurisdiction             CHAR(2),                 -- optional: the government verification service relied on (Model Rules)
    -- optional, read by the due-diligence run only (reporting.source.DUE_DILIGENCE_COLUMNS):
    registered_at                DATE,                    -- the day the seller registered on the platform
    tin_not_issued               BOOLEAN,                 -- its state of residence issues (or requires) no TIN
    business_registration_not_issued BOOLEAN              -- its state of residence issues no registration number
);

CREATE TABLE seller_tins (
    seller_id  VARCHAR(64)  NOT NULL,
    tin        VARCHAR(200) NOT NULL,
    issued_by  CHAR(2)      NOT NULL
);

CREATE TABLE seller_financial_accounts (
    seller_id           VARCHAR(64)  NOT NULL,
    identifier          VARCHAR(200) NOT NULL,   -- IBAN or other account number
    account_holder_name VARCHAR(200)
);

CREATE TABLE seller_permanent_establishments (
    seller_id         VARCHAR(64)  NOT NULL,
    country           CHAR(2)      NOT NULL,
    -- optional: the establishment's address, for authorities that want it (HU)
    address_street    VARCHAR(200),
    address_building  VARCHAR(200),
    address_post_code VARCHAR(200),
    address_city      VARCHAR(200)
);

CREATE TABLE property_listings (
    listing_id               VARCHAR(64)  NOT NULL PRIMARY KEY,
    seller_id                VARCHAR(64)  NOT NULL,
    address_street           VARCHAR(200),
    address_building         VARCHAR(200),
    address_post_code        VARCHAR(200),
    address_city             VARCHAR(200),
    address_country          CHAR(2),
    land_registration_number VARCHAR(200),
    property_type            VARCHAR(6),             -- DPI901 ... DPI910
    other_property_type      VARCHAR(200),           -- optional: the text for DPI910
    owner_id                 VARCHAR(64)             -- optional: the property's owner (DAC7 merges one owner's units only)
);

CREATE TABLE transactions (
    transaction_id VARCHAR(64) NOT NULL PRIMARY KEY,
    seller_id      VARCHAR(64) NOT NULL,
    activity       VARCHAR(32) NOT NULL,  -- sale_of_goods | personal_services | transportation_rental | immovable_property
    listing_id     VARCHAR(64),           -- immovable_property only
    paid_at        TIMESTAMP   NOT NULL,  -- UTC: when the consideration was paid or credited
    currency       CHAR(3)     NOT NULL,  -- ISO 4217
    amount_minor   BIGINT      NOT NULL,  -- Consideration, net of the operator's fees and taxes
    fee_minor      BIGINT      NOT NULL DEFAULT 0,
    tax_minor      BIGINT      NOT NULL DEFAULT 0,
    rented_days    INTEGER,               -- immovable_property only
    operator_id    VARCHAR(64)            -- optional: the operator of a group whose platform it was made on
                                          -- ([operators.ID] of dac7.toml); NULL: [operator]
);

CREATE TABLE refunds (
    refund_id      VARCHAR(64) NOT NULL PRIMARY KEY,
    transaction_id VARCHAR(64) NOT NULL,
    refunded_at    TIMESTAMP   NOT NULL,  -- UTC
    amount_minor   BIGINT      NOT NULL,
    fee_minor      BIGINT      NOT NULL DEFAULT 0,
    tax_minor      BIGINT      NOT NULL DEFAULT 0
);

CREATE TABLE fx_rates (
    currency      CHAR(3)        NOT NULL,
    rate_date     DATE           NOT NULL,
    units_per_eur DECIMAL(20, 8) NOT NULL,  -- units of the currency per 1 EUR (ECB); TEXT in SQLite
    PRIMARY KEY (currency, rate_date)
);

-- (paid_at, seller_id) covers the period filter and the active-seller lookups of the extract.
CREATE INDEX ix_transactions_paid_at ON transactions (paid_at, seller_id);
CREATE INDEX ix_refunds_transaction ON refunds (transaction_id);
CREATE INDEX ix_seller_tins_seller ON seller_tins (seller_id);
CREATE INDEX ix_accounts_seller ON seller_financial_accounts (seller_id);
CREATE INDEX ix_pe_seller ON seller_permanent_establishments (seller_id);
CREATE INDEX ix_listings_seller ON property_listings (seller_id);
