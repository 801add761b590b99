// Package config is the daemon's configuration file: its keys, loading (YAML with environment
// expansion), validation, defaults and the rendering that `check` prints.
//
// Every YAML key is spelled once, in the table of keys.go, beside the Go field it sets. The
// bridge validates its own settings and names what is wrong by Go field (bridge.FieldError);
// this package alone maps those fields to keys and gives each problem the line of its key
// (Problem). The daemon's own settings (connections, HTTP, logging) are validated here, and so
// are the catalog's schema files, compiled with catalog.Load. catalog.events is the one key
// whose children the file names (events, by name); events.go handles it, and resolves its
// relative schema paths against the directory of the config file.
package config
