module github.com/gobind/gobind/bench/gohello

go 1.24
