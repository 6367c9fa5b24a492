#!/usr/bin/env python3
"""Check a migrated CELAEST database against the ERD in docs/erd.md (the original design
document, binding for table names, listed fields, relations, unique constraints and indexes).

Run from the project root, after `manage.py migrate`, with the same environment the project
uses (DATABASE_URL etc.):

    python tools/erd_check.py            # settings module: celaest.settings
    python tools/erd_check.py --settings celaest.settings.test

It reads the live schema through Django's introspection and reports every ERD table, column,
foreign key, unique constraint and hot-path index that is missing. Exit status 0 when nothing is
missing, 1 otherwise. PostgreSQL-only facts (UUID column types, the generated column) are checked
only on PostgreSQL.
"""

import argparse
import os
import sys

# Columns the ERD names. "a|b" accepts either spelling (the ERD writes some FKs without _id).
TABLES = {
    "organizations": "id name slug email settings max_users created_at deleted_at",
    "users_profile": "id organization_id email first_name last_name role scopes preferences",
    "subscription_plans": "id code name price_monthly price_yearly limits features",
    "licenses": "id organization_id plan_id license_key status expires_at ai_requests_used custom_limits",
    "license_usage_log": "id license_id period_start period_end ai_requests_count tokens_input calculated_cost",
    "ai_models": "id provider model_id display_name capabilities max_tokens_input cost_per_1k_input is_default",
    "ai_api_pool": "id provider key_name key_encrypted is_active is_healthy rate_limit_rpm usage_count priority",
    "prompts_master": "id slug name category system_prompt variables preferred_model_id temperature version "
    "is_active parent_id",
    "task_batches": "id organization_id user_id status total_tasks completed_tasks",
    "processed_tasks": "id organization_id user_id license_id batch_id model_id api_key_id prompt_id input_text "
    "output_json status tokens_input tokens_output tokens_total cost_usd execution_time_ms created_at",
    "roi_metrics": "id organization_id period_type period_start tasks_completed time_saved_minutes money_saved "
    "avg_execution_time_ms active_users_count",
    "telemetry_events": "id organization_id user_id event_type event_name properties page_url device_type created_at",
    "audit_logs": "id user_id organization_id action resource_type resource_id changes ip_address created_at",
    "system_events": "id created_at",
    "system_config": "key value description is_sensitive",
    "feature_flags": "id flag_key is_enabled target_type target_percentage",
    "product_categories": "id name slug parent_id sort_order",
    "products": "id category_id name slug price status avg_rating review_count download_count",
    "product_reviews": "id product_id user_id rating title comment is_verified",
    "product_releases": "id product_id version status release_notes download_url checksum_sha256",
    "customer_assets": "id product_id user_id license_id order_id status expires_at",
    "asset_downloads": "id asset_id release_id user_id ip_address",
    "payment_gateways": "id name code provider status fee_percentage",
    "payment_methods": "id user_id type card_brand card_last4 is_default",
    "orders": "id order_number user_id gateway_id status total coupon_id",
    "order_items": "id order_id product_id quantity unit_price total",
    "invoices": "id invoice_number order_id user_id status total",
    "tax_rates": "id name code rate country_code is_active",
    "coupons": "id code discount_type discount_value valid_from valid_until",
    "user_sessions": "id user_id session_token ip_address user_agent device_info is_active expires_at",
    "user_api_keys": "id user_id name key_hash key_prefix scopes rate_limit_rpm usage_count",
    "webhooks": "id user_id name url events status",
    "webhook_deliveries": "id webhook_id event_type payload response_status attempt_number delivered_at",
    "license_ip_bindings": "id license_id ip_address machine_id hostname is_active first_seen last_seen",
    "license_validations": "id license_id ip_binding_id|ip_binding ip_address is_valid failure_reason created_at",
    "license_collisions": "id license_id ip_binding_a_id|ip_binding_a ip_binding_b_id|ip_binding_b collision_type "
    "severity resolved_at auto_resolved",
}

# (table, column) -> referenced table
FOREIGN_KEYS = {
    ("users_profile", "organization_id"): "organizations",
    ("licenses", "organization_id"): "organizations",
    ("licenses", "plan_id"): "subscription_plans",
    ("license_usage_log", "license_id"): "licenses",
    ("task_batches", "organization_id"): "organizations",
    ("task_batches", "user_id"): "users_profile",
    ("processed_tasks", "organization_id"): "organizations",
    ("processed_tasks", "user_id"): "users_profile",
    ("processed_tasks", "license_id"): "licenses",
    ("processed_tasks", "batch_id"): "task_batches",
    ("processed_tasks", "model_id"): "ai_models",
    ("processed_tasks", "api_key_id"): "ai_api_pool",
    ("processed_tasks", "prompt_id"): "prompts_master",
    ("roi_metrics", "organization_id"): "organizations",
    ("prompts_master", "preferred_model_id"): "ai_models",
    ("prompts_master", "parent_id"): "prompts_master",
    ("audit_logs", "user_id"): "users_profile",
    ("audit_logs", "organization_id"): "organizations",
    ("telemetry_events", "organization_id"): "organizations",
    ("telemetry_events", "user_id"): "users_profile",
    ("products", "category_id"): "product_categories",
    ("product_categories", "parent_id"): "product_categories",
    ("product_reviews", "product_id"): "products",
    ("product_reviews", "user_id"): "users_profile",
    ("product_releases", "product_id"): "products",
    ("customer_assets", "product_id"): "products",
    ("customer_assets", "user_id"): "users_profile",
    ("customer_assets", "license_id"): "licenses",
    ("customer_assets", "order_id"): "orders",
    ("asset_downloads", "asset_id"): "customer_assets",
    ("asset_downloads", "release_id"): "product_releases",
    ("asset_downloads", "user_id"): "users_profile",
    ("payment_methods", "user_id"): "users_profile",
    ("orders", "user_id"): "users_profile",
    ("orders", "gateway_id"): "payment_gateways",
    ("orders", "coupon_id"): "coupons",
    ("order_items", "order_id"): "orders",
    ("order_items", "product_id"): "products",
    ("invoices", "order_id"): "orders",
    ("invoices", "user_id"): "users_profile",
    ("user_sessions", "user_id"): "users_profile",
    ("user_api_keys", "user_id"): "users_profile",
    ("webhooks", "user_id"): "users_profile",
    ("webhook_deliveries", "webhook_id"): "webhooks",
    ("license_ip_bindings", "license_id"): "licenses",
    ("license_validations", "license_id"): "licenses",
    ("license_validations", "ip_binding_id|ip_binding"): "license_ip_bindings",
    ("license_collisions", "license_id"): "licenses",
    ("license_collisions", "ip_binding_a_id|ip_binding_a"): "license_ip_bindings",
    ("license_collisions", "ip_binding_b_id|ip_binding_b"): "license_ip_bindings",
}

UNIQUE = {
    "organizations": ["slug"],
    "users_profile": ["email"],
    "licenses": ["license_key"],
    "subscription_plans": ["code"],
    "ai_models": ["provider model_id"],
    "prompts_master": ["slug version"],
    "roi_metrics": ["organization_id period_type period_start"],
    "license_usage_log": ["license_id period_start period_end"],
    "product_categories": ["slug"],
    "products": ["slug"],
    "orders": ["order_number"],
    "invoices": ["invoice_number"],
    "payment_gateways": ["code"],
    "tax_rates": ["code"],
    "coupons": ["code"],
    "user_sessions": ["session_token"],
    "feature_flags": ["flag_key"],
}

# Hot-path and medium-priority indexes: an index (or unique constraint) whose leading columns
# are these, in this order.
INDEXES = {
    "licenses": ["license_key", "status"],
    "processed_tasks": ["organization_id created_at"],
    "users_profile": ["email"],
    "ai_api_pool": ["is_healthy priority"],
    "audit_logs": ["created_at"],
    "roi_metrics": ["organization_id period_type period_start"],
    "telemetry_events": ["organization_id created_at"],
}


def pick(name, available):
    """Return the first spelling of an "a|b" column name present in `available`, else None."""
    for option in name.split("|"):
        if option in available:
            return option
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default=os.environ.get("DJANGO_SETTINGS_MODULE", "celaest.settings"))
    args = parser.parse_args()
    sys.path.insert(0, os.getcwd())
    os.environ["DJANGO_SETTINGS_MODULE"] = args.settings
    import django

    django.setup()
    from django.db import connection

    problems = []
    with connection.cursor() as cursor:
        intro = connection.introspection
        tables = set(intro.table_names(cursor))
        columns = {}
        for table in TABLES:
            if table not in tables:
                problems.append(f"missing table {table}")
                continue
            columns[table] = {c.name for c in intro.get_table_description(cursor, table)}
            for wanted in TABLES[table].split():
                if pick(wanted, columns[table]) is None:
                    problems.append(f"missing column {table}.{wanted}")

        for (table, col), target in FOREIGN_KEYS.items():
            if table not in columns:
                continue
            real = pick(col, columns[table])
            if real is None:
                continue  # already reported as a missing column
            relations = intro.get_relations(cursor, table)
            if real not in relations or relations[real][1] != target:
                problems.append(f"{table}.{real} is not a foreign key to {target}")

        def constraint_sets(table):
            cons = intro.get_constraints(cursor, table)
            uniques = [tuple(c["columns"]) for c in cons.values() if c["unique"]]
            indexes = [tuple(c["columns"]) for c in cons.values() if c["index"] or c["unique"]]
            return uniques, indexes

        for table, wanted in UNIQUE.items():
            if table not in columns:
                continue
            uniques, _ = constraint_sets(table)
            for cols in wanted:
                if tuple(cols.split()) not in uniques and set(cols.split()) not in [set(u) for u in uniques]:
                    problems.append(f"no UNIQUE ({', '.join(cols.split())}) on {table}")

        for table, wanted in INDEXES.items():
            if table not in columns:
                continue
            _, indexes = constraint_sets(table)
            for cols in wanted:
                lead = tuple(cols.split())
                if not any(ix[: len(lead)] == lead for ix in indexes):
                    problems.append(f"no index led by ({', '.join(lead)}) on {table}")

        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT is_generated FROM information_schema.columns "
                "WHERE table_name = 'processed_tasks' AND column_name = 'tokens_total'"
            )
            row = cursor.fetchone()
            if not row or row[0] != "ALWAYS":
                problems.append("processed_tasks.tokens_total is not a generated column")
            cursor.execute(
                "SELECT table_name FROM information_schema.columns "
                "WHERE column_name = 'id' AND table_schema = current_schema() AND data_type <> 'uuid' "
                "AND table_name = ANY(%s)",
                [list(TABLES)],
            )
            for (table,) in cursor.fetchall():
                problems.append(f"{table}.id is not a UUID")

    checked = len(TABLES)
    if problems:
        print("\n".join(problems))
        print(f"erd_check: {len(problems)} problems in {checked} tables ({connection.vendor})")
        return 1
    print(f"erd_check: all {checked} ERD tables conform ({connection.vendor})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
