// Command s3bucket creates a bucket on the benchmark's S3 server:
// s3bucket ENDPOINT NAME, with the root keys in $S3_SERVER_USER and
// $S3_SERVER_PASSWORD (what tests/lib/s3-server.sh start was given).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: s3bucket ENDPOINT NAME")
		os.Exit(2)
	}
	c, err := minio.New(os.Args[1], &minio.Options{
		Creds: credentials.NewStaticV4(os.Getenv("S3_SERVER_USER"), os.Getenv("S3_SERVER_PASSWORD"), ""),
	})
	if err == nil {
		err = c.MakeBucket(context.Background(), os.Args[2], minio.MakeBucketOptions{})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3bucket:", err)
		os.Exit(1)
	}
}
