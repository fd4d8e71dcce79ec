module oracle

go 1.26.0

require (
	go.yaml.in/yaml/v2 v2.4.4
	github.com/json-iterator/go v1.1.12
	github.com/modern-go/reflect2 v1.0.3
	github.com/modern-go/concurrent v0.0.0
	github.com/davecgh/go-spew v1.1.2-0.20180830191138-d8f796af33cc
	github.com/fxamacker/cbor/v2 v2.9.1
	github.com/go-logr/logr v1.4.3
	github.com/x448/float16 v0.8.4
	golang.org/x/net v0.57.0
	golang.org/x/text v0.40.0
	gopkg.in/inf.v0 v0.9.1
	k8s.io/api v0.37.0-beta.0
	k8s.io/apimachinery v0.37.0-beta.0
	k8s.io/klog/v2 v2.140.0
	k8s.io/kube-openapi v0.0.0
	k8s.io/utils v0.0.0
	sigs.k8s.io/json v0.0.0
	sigs.k8s.io/randfill v1.0.0
	sigs.k8s.io/structured-merge-diff/v6 v6.4.2
)

replace (
	go.yaml.in/yaml/v2 => ./src/yaml2
	github.com/json-iterator/go => ./src/json-iterator+go
	github.com/modern-go/reflect2 => ./src/modern-go+reflect2
	github.com/modern-go/concurrent => ./src/modern-go+concurrent
	github.com/davecgh/go-spew => ./src/spew
	github.com/fxamacker/cbor/v2 => ./src/fxamacker+cbor
	github.com/go-logr/logr => ./src/go-logr+logr
	github.com/x448/float16 => ./src/x448+float16
	golang.org/x/net => ./src/golang+net
	golang.org/x/text => ./src/golang+text
	gopkg.in/inf.v0 => ./src/go-inf+inf
	k8s.io/api => ./src/kubernetes+api
	k8s.io/apimachinery => ./src/kubernetes+apimachinery
	k8s.io/klog/v2 => ./src/kubernetes+klog
	k8s.io/kube-openapi => ./src/kubernetes+kube-openapi
	k8s.io/utils => ./src/kubernetes+utils
	sigs.k8s.io/json => ./src/kubernetes-sigs+json
	sigs.k8s.io/randfill => ./src/kubernetes-sigs+randfill
	sigs.k8s.io/structured-merge-diff/v6 => ./src/kubernetes-sigs+structured-merge-diff
)
