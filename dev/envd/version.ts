/**
 * The envd version the development envd stands for: what the control plane's
 * REST API should give as `envdVersion` in its create and connect answers.
 *
 * E2B's SDK (2.51.0) gates features on it: from 0.4.0 it no longer sends a
 * default username; from 0.5.2 it allows closeStdin; from 0.5.7 it uploads
 * streams and gzip bodies as application/octet-stream; from 0.6.2 it sends file
 * metadata (X-Metadata-* headers, kept as xattrs), which this envd does not
 * keep, so it stays below that and the SDK refuses metadata itself.
 */
export const ENVD_VERSION = "0.5.7";
