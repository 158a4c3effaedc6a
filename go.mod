module liaison

go 1.26.8

require (
	github.com/fxamacker/cbor/v2 v2.10.0
	github.com/google/uuid v1.6.0
	github.com/klauspost/compress v1.20.4
	github.com/transparency-dev/merkle v0.0.2
	go.yaml.in/yaml/v3 v3.0.6
)

require github.com/x448/float16 v0.8.4 // indirect
