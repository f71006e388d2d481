module github.com/gobind/gobind/go

go 1.24
