-- GitLab triggers Slipway set up itself with the user's GitLab API token: what it registered on the
-- project (the webhook, and the read-only deploy key it clones with), so that replacing the webhook
-- secret updates the hook and deleting the trigger removes what Slipway added. All null for a trigger
-- whose webhook was added by hand.
ALTER TABLE build_triggers
  -- The GitLab instance, e.g. https://gitlab.example.com.
  ADD COLUMN gitlab_api_url text,
  ADD COLUMN gitlab_project_id bigint,
  -- group/subgroup/app, as GitLab named the project when the trigger was set up.
  ADD COLUMN gitlab_project_path text,
  ADD COLUMN gitlab_hook_id bigint,
  -- False when the project had a hook with the trigger's URL already (it was updated, not added).
  ADD COLUMN gitlab_hook_created boolean,
  ADD COLUMN gitlab_deploy_key_id bigint,
  -- False when the project had the key already: deleting the trigger then leaves it.
  ADD COLUMN gitlab_deploy_key_created boolean,
  -- Whether GitLab checks the webhook URL's TLS certificate (enable_ssl_verification).
  ADD COLUMN gitlab_tls_verify boolean,
  -- The API token, sealed; null once forgotten: the trigger then leaves GitLab alone.
  ADD COLUMN gitlab_token_sealed text,
  ADD CONSTRAINT build_triggers_gitlab_setup CHECK (
    gitlab_api_url IS NULL
    OR (provider = 'gitlab' AND gitlab_project_id IS NOT NULL AND gitlab_hook_id IS NOT NULL)
  );
