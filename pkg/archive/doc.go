// Package archive runs the archival of broadcasts: subscribe, store each group in the CAS, append manifest records, reconnect, record gaps.
package archive
