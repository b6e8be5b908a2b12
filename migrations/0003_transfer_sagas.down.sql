DROP TABLE transfer_sagas;
