package archive

import "github.com/every-channel/ec-node/pkg/catalog"

// The catalog tracks a worker follows, in order of preference: hang's
// catalog.json (what moq-cli publishes, and what export reads init segments
// from), then the MSF catalog of IETF MOQT Streaming Format publishers. Only
// when a broadcast has neither are the fallback tracks archived.

// isCatalogTrack reports whether track carries a catalog.
func isCatalogTrack(track string) bool {
	return track == catalog.TrackName || track == catalog.MSFTrackName
}

// nextCatalogTrack is the catalog track to try when track does not exist, or
// "" when none is left.
func nextCatalogTrack(track string) string {
	if track == catalog.TrackName {
		return catalog.MSFTrackName
	}
	return ""
}

// parseCatalog parses the first frame of a group of a catalog track.
func parseCatalog(track string, data []byte, broadcast string) (*catalog.Catalog, error) {
	if track == catalog.MSFTrackName {
		return catalog.ParseMSF(data, broadcast)
	}
	return catalog.Parse(data)
}
