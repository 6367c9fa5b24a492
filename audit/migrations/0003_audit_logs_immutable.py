"""On PostgreSQL, audit rows cannot be changed or deleted, not even by the application's own
database role: a trigger refuses UPDATE and DELETE on audit_logs. The one change it lets through
is the SET NULL Django performs when a referenced user or organization is hard-deleted (no other
column may change). TRUNCATE (test database flushes) is not a row operation and is unaffected.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION audit_logs_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.user_id IS NULL OR NEW.user_id IS NOT DISTINCT FROM OLD.user_id)
       AND (NEW.organization_id IS NULL OR NEW.organization_id IS NOT DISTINCT FROM OLD.organization_id)
       AND (to_jsonb(NEW) - 'user_id' - 'organization_id') = (to_jsonb(OLD) - 'user_id' - 'organization_id')
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_logs rows are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS audit_logs_immutable ON audit_logs;
CREATE TRIGGER audit_logs_immutable BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_immutable();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_logs_immutable ON audit_logs;
DROP FUNCTION IF EXISTS audit_logs_immutable();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)  # the % in RAISE is not a placeholder

    return run


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_initial")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
