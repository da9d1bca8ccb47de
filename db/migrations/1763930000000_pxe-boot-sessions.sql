-- Up Migration
-- Boot servers are reached over SSH; the private key is stored for the worker and never
-- returned by the api.
CREATE TABLE pxe_boot_servers (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name                text NOT NULL UNIQUE,
  ssh_host            text NOT NULL,
  ssh_port            integer NOT NULL CHECK (ssh_port BETWEEN 1 AND 65535),
  ssh_user            text NOT NULL,
  ssh_private_key     text NOT NULL,
  tftp_root           text NOT NULL,
  dhcp_hosts_file     text NOT NULL,
  dhcp_reload_command text NOT NULL,
  dhcp_service_check  text NOT NULL,
  tftp_service_check  text NOT NULL,
  target_driver       text NOT NULL CHECK (target_driver IN ('targetcli', 'tgt')),
  tgt_control_port    integer,
  portal_ip           text NOT NULL,
  iqn_prefix          text NOT NULL,
  image_dir           text NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now()
);

-- MAC and IP are unique across all machines: dhcpd would accept duplicates, so we refuse them.
-- tid numbers the machine's iSCSI target on its boot server (tgt needs a number).
CREATE TABLE pxe_machines (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name           text NOT NULL,
  mac            text NOT NULL UNIQUE CHECK (mac ~ '^([0-9a-f]{2}:){5}[0-9a-f]{2}$'),
  ip             text NOT NULL UNIQUE,
  boot_mode      text NOT NULL CHECK (boot_mode IN ('bios', 'uefi')),
  boot_server_id uuid NOT NULL REFERENCES pxe_boot_servers (id),
  tid            serial NOT NULL UNIQUE,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pxe_machines_owner ON pxe_machines (owner_id);

CREATE TABLE pxe_images (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  boot_server_id uuid NOT NULL REFERENCES pxe_boot_servers (id),
  name           text NOT NULL,
  filename       text NOT NULL,
  format         text NOT NULL CHECK (format IN ('raw', 'qcow2', 'vhdx')),
  size_bytes     bigint,
  status         text NOT NULL CHECK (status IN ('PENDING', 'CONVERTING', 'READY', 'ERROR')),
  raw_filename   text,
  progress       real NOT NULL DEFAULT 0,
  error          text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pxe_images_owner ON pxe_images (owner_id);

-- dhcp_entry: the machine belongs in its boot server's hosts file (the file is rendered
-- from these rows). One busy session per machine, enforced here as well as by the workflow id.
CREATE TABLE pxe_sessions (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  machine_id    uuid NOT NULL REFERENCES pxe_machines (id) ON DELETE CASCADE,
  image_id      uuid NOT NULL REFERENCES pxe_images (id),
  session_type  text NOT NULL CHECK (session_type IN ('DISKLESS_BOOT')),
  description   text NOT NULL DEFAULT '',
  status        text NOT NULL CHECK (status IN ('STARTING', 'ACTIVE', 'STOPPING', 'STOPPED', 'FAILED')),
  error         jsonb,
  boot_script   text,
  dhcp_entry    boolean NOT NULL DEFAULT false,
  workflow_id   text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  stopped_at    timestamptz,
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX pxe_sessions_one_busy_per_machine ON pxe_sessions (machine_id) WHERE status IN ('STARTING', 'ACTIVE', 'STOPPING');
CREATE INDEX pxe_sessions_owner_created ON pxe_sessions (owner_id, created_at DESC);
CREATE INDEX pxe_sessions_status_created ON pxe_sessions (status, created_at DESC);

-- Down Migration
DROP TABLE pxe_sessions;
DROP TABLE pxe_images;
DROP TABLE pxe_machines;
DROP TABLE pxe_boot_servers;
