"""The gallery service: enroll person crops and answer who a query crop is."""
