# hub: model and lens ids resolved offline from Hugging Face caches built by hand
# (refs, snapshots, blobs), against the same runs given the fixtures' folders.
tlens_sh_test(hub_ids hub/test_hub.sh)
tlens_c_test(hub_rules hub/test_hub_rules.c)
