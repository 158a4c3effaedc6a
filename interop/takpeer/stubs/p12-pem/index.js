module.exports={getPemFromP12(){throw new Error("p12-pem stub")}};
