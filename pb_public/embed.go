// Package pbpublic embeds the built front-end: the tracker (t.js) and the
// dashboard (index.html, assets/). The files are generated from web/ by
// scripts/build-web.sh and committed, so `go build` alone gives a complete
// binary with no Node.js at run time.
package pbpublic

import (
	"embed"
	"io/fs"
)

//go:embed index.html t.js favicon.svg assets
var files embed.FS

// FS returns the embedded front-end files, rooted at the pb_public directory
// (index.html, t.js, assets/...).
func FS() fs.FS {
	return files
}
