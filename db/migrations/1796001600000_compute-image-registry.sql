-- Up Migration
-- The registry a converted image was pushed to, so that nodes pull it with that registry's
-- credentials (two registries may share an address with different accounts).
ALTER TABLE compute_images ADD COLUMN registry text REFERENCES compute_registries (name) ON DELETE SET NULL;

-- Down Migration
ALTER TABLE compute_images DROP COLUMN registry;
